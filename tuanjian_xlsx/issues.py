"""Problems are data: an Issue names the place (file · sheet · cell · field) and says what is wrong in Chinese.

Every message is rendered from one catalogue, keyed by a stable English code.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Literal
from collections.abc import Iterable

Severity = Literal["error", "warning"]

# code -> (severity, Chinese message template, English gloss for developers' docs)
CATALOGUE: dict[str, tuple[Severity, str, str]] = {
    "toml-syntax": ("error", "配置文件语法错误：{detail}", "the TOML file cannot be parsed"),
    "toml-encoding": ("error", "文件既不是 UTF-8 也不是 GBK 编码，无法读取；请用记事本打开，“另存为”时编码选 UTF-8", "a TOML file in an unknown encoding"),
    "cannot-write": ("error", "无法写入 {detail}（{reason}）", "the system refused to create or write a file"),
    "folder-not-writable": ("error", "无法在文件夹 {detail} 中新建文件（{reason}）", "the target folder cannot be made or written in"),
    "os-error": ("error", "无法读写 {detail}（{reason}）", "a file operation the system refused"),
    "system-error": ("error", "系统拒绝了这项操作（{reason}）", "an OSError that names no file (network, device)"),
    "unknown-key": ("error", "未知的设置项“{key}”（是否拼写有误？）", "a key the settings do not know"),
    "missing-key": ("error", "缺少必填的设置项“{key}”", "a required key is missing"),
    "bad-value": ("error", "设置项“{key}”的值无效：{detail}", "a value of the wrong kind"),
    "unknown-form": ("error", "未知的报表“{value}”，可用的有：{known}", "a form id no spec defines"),
    "current-not-accepted": ("error", "当前版本第 {version} 版不在 accepted_versions 里：各单位收到的第 {version} 版交回来都会被拒收；请写成 accepted_versions = [{suggest}]", "the current version left out of the accepted ones"),
    "accepted-until-unused": ("error", "accepted_until 写了第 {version} 版的截止日，但它是当前版本或不在 accepted_versions 里，这个日期不会起作用；请删去这一项，或把第 {version} 版写进 accepted_versions", "a closing day for a version that is current or not accepted"),
    "unknown-version": ("error", "报表“{form}”没有第 {version} 版模板", "a version no spec file defines"),
    "file-missing": ("error", "找不到文件：{detail}", "a file the configuration needs is absent"),
    "file-locked": ("error", "无法写入 {detail}（{reason}）；若文件正在 Excel/WPS 中打开，请关闭后重试", "the target file is locked"),
    "file-unreadable": ("error", "无法打开文件：{detail}", "a file that cannot be opened as a workbook"),
    "sheet-missing": ("error", "缺少工作表“{name}”", "a required sheet is absent"),
    "column-missing": ("error", "工作表缺少“{column}”列（第 1 行应为表头）", "a required column header is absent"),
    "unknown-column": ("warning", "不认识的列“{column}”，已忽略", "an extra column header"),
    "record-repeated": ("warning", "这张工作表与“{first}”内容完全相同，按同一次走访计一次；如确是两次走访，请改正这一张后重新报送", "two sheets of one file holding the same record"),
    "formula-error": ("error", "“{field}”里的公式算出了错误（{value}），请直接填写内容", "an input holding a formula whose result is an error"),
    "required-value": ("error", "“{field}”必须填写", "a required cell is empty"),
    "not-a-number": ("error", "“{field}”应填数字，现为“{value}”", "a number was expected"),
    "vague-number": ("error", "“{field}”的“{value}”不是确切的数，请填写具体数字（如 32）", "an amount like 三十余人 or 十几"),
    "not-an-integer": ("error", "“{field}”应填整数，现为“{value}”", "an integer was expected"),
    "number-too-large": ("error", "“{field}”的数 {value} 大得不合常理（超过 {limit}），请核对是否多打了数字或粘贴了电话号码等", "a number beyond what a count or amount can be"),
    "negative": ("error", "“{field}”不能为负数，现为 {value}", "a negative number"),
    "not-in-choices": ("error", "“{field}”的值“{value}”不在可选项中（可选：{choices}）", "a value outside the list"),
    "bad-cell": ("error", "“{field}”的值“{value}”无效：{detail}", "a cell value of the wrong kind"),
    "bad-date": ("error", "“{field}”不是有效日期：“{value}”", "a date that cannot be read"),
    "bad-email": ("error", "“{field}”不是有效的电子邮箱：“{value}”（几个邮箱之间用分号隔开）", "an e-mail address that cannot be right"),
    "bad-id": ("error", "“{field}”只能用英文字母、数字、下划线和连字符：“{value}”", "an identifier with other characters"),
    "duplicate-unit": ("error", "单位“{value}”重复（第 {first} 行已有）", "a unit listed twice"),
    "duplicate-task": ("error", "任务编号“{value}”重复（第 {first} 行已有）", "a task number listed twice"),
    "unknown-unit-type": ("error", "未知的单位类型“{value}”（单位类型表中有：{known}）", "a unit type not in the type list"),
    "alias-taken": ("error", "“{unit}”的别名“{value}”也是“{other}”的名称或别名；一个名称只能指一个单位", "an alias another unit already goes by"),
    "rule-blank": ("error", "单位类型“{unit_type}”的“{form}”报送周期是空的；不需报送的请填“不报送”", "a type's cadence left blank where others have one"),
    "nothing-to-distribute": ("error", "{period}没有要下发的表：{detail}；请换一个报送期（如按季的用 2026-Q1）", "no form is filed for the period asked"),
    "missing-rule": ("warning", "单位类型“{unit_type}”未设置“{form}”的报送规则，按不报送处理", "no due rule for a type and form"),
    "task-without-target": ("error", "任务“{task}”是{kind}指标，但没有目标值（{detail}）", "a quantified task with no target"),
    "ratio-target-range": ("error", "任务“{task}”是{task_kind}指标，目标值应为 0%～{most}（写小数，如 0.4 即 40%），现为 {value}", "a ratio or growth target outside its range"),
    "ratio-needs-labels": ("error", "任务“{task}”是{task_kind}指标，须填写“完成数口径”和“基数口径”", "a ratio or growth task without its two labels"),
    "task-no-unit-types": ("error", "任务“{task}”没有填写报送单位类型", "a task nobody reports"),
    "workspace-exists": ("error", "工作区里已有此文件，为免覆盖，未做任何改动", "init would overwrite a file"),
    "empty-file": ("error", "文件是空的（0 字节），请重新发送", "a 0-byte file"),
    "macro-workbook": ("error", "含宏的工作簿（.xlsm/.xltm）不予接收：宏可能携带病毒，请另存为 .xlsx 后再发", "a macro-enabled workbook"),
    "legacy-xls": ("error", "这是旧版 .xls 格式的文件（Excel 2003 或旧版 WPS 保存），为安全起见不予读取；请在 Excel/WPS 中“另存为”Excel 工作簿（.xlsx）后再发", "an old-format (OLE) workbook, whatever its name"),
    "encrypted": ("error", "工作簿设置了打开密码，无法读取，请取消密码后再发", "a password-protected workbook"),
    "unsupported-format": ("error", "无法读取 {ext} 文件，请在 WPS/Excel 中“另存为”Excel 工作簿（.xlsx）后再发", "a format calamine cannot read"),
    "too-many-sheets": ("error", "文件里有 {count} 个工作表，超过 {most} 个，不予读取；请只放本期的报表（每次走访一个工作表）后再发", "more sheets than any report holds"),
    "sheet-too-large": ("error", "工作表用到的区域过大（{detail}），不予读取；请删除多余内容后另存再发", "a sheet too large to read"),
    "file-too-large": ("error", "文件过大（{size} MB），不是一张报表应有的大小", "a file over the size cap"),
    "duplicate-row": ("error", "任务“{task}”出现了不止一行（第一次在 {first}）", "a task row copied twice"),
    "zip-unsafe-path": ("error", "压缩包中的文件路径不安全（{detail}），不予读取", "a zip member outside its folder"),
    "sender-mismatch": ("warning", "发件人 {sender} 不是名单中“{unit}”的邮箱（{expected}），已按表中所填计入“{unit}”；如是别的单位错发了这张表，请核对", "a mail from another address"),
    "zip-bomb": ("error", "文件解压后异常巨大（{detail}），为安全起见不予读取", "a zip bomb"),
    "xml-attack": ("error", "文件内部含有不安全的 XML 结构（实体定义），为安全起见不予读取", "an XML entity attack"),
    "template-modified": ("warning", "表格结构与模板不同（行列被移动或名称丢失），已按标签文字读取：{fields}", "fields found by label, not by name"),
    "value-in-label": ("warning", "“{field}”填在了标签格里，输入格 {input} 为空，已按冒号后的“{value}”读取", "a value typed after the label's colon, its input cell empty"),
    "normalised-number": ("warning", "“{field}”按 {value} 读取（原为“{raw}”）", "a number read from text"),
    "normalised-period": ("warning", "“{field}”按报送期 {value} 读取（该格是日期 {raw}：Excel、WPS 会把“2026年3月”这样的写法变成日期）；请把该格设为文本后再填，以免被误读", "a month read from a date cell"),
    "normalised-date": ("warning", "“{field}”按日期 {value} 读取（原为“{raw}”，不是日期格式；请改填成日期，如 {value}）", "a date read from text or a serial"),
    "normalised-choice": ("warning", "“{field}”按“{value}”读取（原为“{raw}”）", "a choice matched after folding"),
    "not-a-period": ("error", "“{field}”应为报送期（如 2026-03、2026年3月、2026-Q1），现为“{value}”", "a period that cannot be read"),
    "wrong-period-kind": ("error", "“{field}”应为{kind}（如 {example}），现为“{value}”", "a month given for a quarterly form, or the like"),
    "not-applicable-number": ("error", "“{field}”填了“{value}”，这里要填数字：本单位没有这项工作的填 0（比率类的完成数和基数都填 0，按达标计）", "“不适用” typed where a number belongs"),
    "date-after-received": ("warning", "“{field}”是 {value}，晚于收到这份报表的日期 {received}，请核对是否填错", "a date on a form after the day it arrived"),
    "date-outside-period": ("error", "“{field}”{value} 不在报送期 {period} 的填报时段（{start}～{end}）内", "a date outside the period"),
    "unknown-unit-near": ("error", "“{field}”的“{value}”不在单位名单中，是否为“{near}”？", "a unit not on the roster, one near it"),
    "normalised-unit": ("warning", "“{field}”按“{value}”读取（原为“{raw}”）", "a unit written by another of its names"),
    "unknown-unit": ("error", "“{field}”的“{value}”不在单位名单中", "a unit not on the roster"),
    "passport-mismatch": ("error", "“{field}”为“{value}”，与下发时的“{expected}”不一致：这份表是发给“{expected}”的；要报“{value}”，请用为它下发的表（或空白模板）填写，不要改用别的期、别的单位的表", "cells disagree with the passport"),
    "record-mismatch": ("error", "“{field}”为“{value}”，与同一文件中其他表的“{expected}”不一致", "forms in one file disagree"),
    "not-a-form": ("error", "文件中没有可识别的报表（应为{known}之一）", "no form found in the file"),
    "no-passport": ("warning", "文件没有模板标识（可能是自行制作的表格），已按标签文字识别为“{form}”", "a form found without a passport"),
    "passport-other-form": ("error", "模板标识为“{claimed}”，但表格内容是“{actual}”", "the passport of another form"),
    "newer-version": ("error", "“{form}”第 {version} 版比本系统最新的第 {latest} 版还新，请使用第 {latest} 版模板或更新 tuanjian", "a version newer than the tool knows"),
    "version-not-accepted": ("error", "已不再接收“{form}”第 {version} 版，请改用第 {current} 版模板", "a version the settings refuse"),
    "fingerprint-mismatch": ("error", "“{form}”第 {version} 版模板的标识与本系统的不符（模板被改动或来源不明），请使用下发的模板", "a fingerprint matching no spec"),
    "form-disabled": ("error", "报表“{form}”未启用（见 tuanjian.toml 的 forms）", "a form the settings switch off"),
    "form-not-filed": ("error", "{unit}（{unit_type}）不报送“{form}”", "a form this unit's type does not file"),
    "unknown-task": ("error", "任务编号“{value}”不在目标任务中", "a tracker row of no known task"),
    "task-not-for-unit": ("warning", "任务“{task}”不是{unit_type}的填报任务，这一行填的内容不计入（可清空）", "a tracker row of another unit type, filled: ignored"),
    "task-missing": ("error", "缺少任务“{task}”这一行", "a task row deleted from the tracker"),
    "ratio-incomplete": ("error", "任务“{task}”是{task_kind}指标，“完成数”和“基数”须同时填写", "a ratio or growth with one of its two numbers"),
    "done-above-base": ("error", "任务“{task}”的完成数 {done} 大于基数 {base}", "a numerator above its denominator"),
    "locked-changed": ("error", "“{field}”被改动：应为“{expected}”，现为“{value}”", "a locked cell typed over"),
    "not-in-visit-week": ("warning", "“{field}”{value} 不在走基层周（每月第一周，1—7日）", "a visit outside the first week"),
    "old-version": ("warning", "使用的是“{form}”第 {version} 版模板（当前为第 {current} 版），仍可接收；下次请用新模板", "an older accepted version"),
    "version-expired": ("error", "“{form}”第 {version} 版只接收到 {until}，此后收到的不再接收，请改用第 {current} 版模板《{template}》{since}", "a version past its date"),
    "mail-not-configured": ("error", "未设置{what}：请在 tuanjian.toml 的 [mail] 中填写 {key}", "no mail server or sender set"),
    "mail-no-password": ("error", "未找到{what}密码：请设置环境变量 {env}（密码不写进配置文件）", "the password variable is empty"),
    "mail-connect": ("error", "无法连接{what}服务器 {where}（{reason}），未{verb}任何邮件", "the mail server cannot be reached"),
    "mail-disconnected": ("error", "收信中途与服务器断开（{reason}）；已收取的邮件已登记，再运行一次即可继续", "the IMAP connection dropped"),
    "mail-login": ("error", "收信服务器 {where} 拒绝登录：请核对用户名 {user} 和密码", "the IMAP login was refused"),
    "mail-folder": ("error", "打不开邮箱里的文件夹“{name}”{said}；请检查文件夹名称，或在邮箱网页的设置里开启 IMAP", "no such IMAP folder"),
    "backup-failed": ("warning", "未能保留上一份文件的备份（{name}）", "the previous master or assessment could not be kept"),
    "ledger-damaged": ("error", "登记簿无法使用（{reason}）；运行 tuanjian ledger check 检查，或 tuanjian ledger rebuild 从原件存档重建", "the ledger cannot be opened or read"),
    "ledger-newer": ("error", "登记簿是较新版本的 tuanjian 写的（结构第 {version} 版，本程序只认识到第 {known} 版）；请更新 tuanjian，或运行 tuanjian ledger check 检查、tuanjian ledger rebuild 从原件存档重建", "a ledger schema newer than the code"),
    "ledger-locked": ("error", "登记簿正被另一个 tuanjian 占用（{reason}）；请等它结束后重试，若一直如此，运行 tuanjian ledger check 检查，或 tuanjian ledger rebuild 从原件存档重建", "the ledger stays locked"),
    "workspace-readonly": ("error", "工作区是只读的（{detail}），无法登记；请复制到可写的文件夹或请管理员开放写权限", "the workspace cannot be written"),
    "disk-full": ("error", "磁盘空间不足，无法写入 {detail}；请腾出空间后重试（已登记的不会丢失）", "no space left for the ledger or an original"),
    "ledger-missing": ("error", "找不到登记簿，但原件存档中有 {count} 个原件；运行 tuanjian ledger rebuild 从原件存档重建", "no ledger beside a non-empty archive"),
    "ledger-integrity": ("error", "登记簿完整性检查未通过（{detail}）；运行 tuanjian ledger rebuild 从原件存档重建", "PRAGMA integrity_check failed"),
    "archive-missing": ("error", "登记的原件“{shown}”在原件存档中找不到", "an archived original is gone"),
    "archive-altered": ("error", "原件存档中的“{shown}”与登记的 sha256 不符（已被改动或损坏）", "an archived original changed"),
    "archive-temp": ("warning", "原件存档中有写了一半的临时文件（{age}前留下；{detail}）", "a temporary file a killed run left"),
    "rebuild-skipped": ("warning", "{detail}，未重新登记", "an archive file rebuild could not use"),
    "rebuild-names": ("warning", "{count} 个原件的原文件名、来源和收到时间无法恢复：以“原件_<哈希前8位>”为名（如 {example}），收到时间按存档时间计", "names not recoverable"),
    "rebuild-mails": ("warning", "已从邮箱收取的邮件记录无法恢复（{detail}）：下次收信会再取一遍，内容按 sha256 去重，不会重复登记", "taken mails not recoverable"),
    "rebuild-refusals": ("warning", "未保存原件的拒收记录无法恢复（{detail}）；压缩包/邮件中被拒收的文件已从存档中的压缩包/邮件重新登记", "refusals recorded without bytes"),
    "rebuild-replies": ("warning", "自动回复的记录无法恢复（{detail}）：重建后的文件都算作已回复，尚未回复的不会自动补发（需要时用 tuanjian merge --reply --resend 编号）", "reply records not recoverable"),
    "rebuild-sightings": ("warning", "重复收到的记录（同一文件又收到的时间和来源）无法恢复；不影响汇总", "sightings not recoverable"),
    "void-unknown-file": ("error", "登记簿中没有名为“{value}”的文件，也没有 SHA-256 以它开头的文件；请照汇总表“来源”表的“文件”列写收到时的文件名，或写“SHA-256”列的前 8 位以上", "ledger void: no file by that name or sha256 prefix"),
    "void-ambiguous": ("error", "“{value}”对应 {count} 个文件，未作改动；请改用“来源”表中 SHA-256 的前 8 位以上指明是哪一个：{candidates}", "ledger void: a name that several files have"),
    "void-no-reason": ("error", "请用 --reason 写明{what}的原因（记入登记簿，并显示在汇总表“来源”表中），未作改动", "ledger void without --reason"),
    "void-arrived-again": ("warning", "与已作废的文件（SHA-256 {sha}…）内容相同，仍按作废处理，不计入汇总（作废原因：{reason}）；若收件箱中还留着它，请移走；若确应计入，运行 tuanjian ledger void {sha} --undo --reason 原因", "content withdrawn by staff arrived again"),
    "master-locked": ("warning", "{name} 可能正在 Excel/WPS 中打开，无法替换；本次另存为 {other}", "the master or assessment is locked"),
    "already-current": ("warning", "已是当前的第 {version} 版，无需升级", "upgrade of a current-version file"),
    "path-refused": ("error", "未读取 {detail}：{reason}", "a path that is not read (a link leading out, unreadable, a loop)"),
    "reader-crashed": ("error", "{reason}；已单独拒收此文件，其余文件照常处理。请对方在 Excel/WPS 中另存后重新发送", "the reader died or hung on this file"),
    "zip-no-report": ("error", "压缩包里没有报表（{detail}），请把报表（.xlsx 等表格）打包后重新发送", "a zip holding no spreadsheet"),
    "zip-too-many": ("error", "压缩包内文件过多（至少 {count} 个，最多接收 {limit} 个），整个压缩包不予读取；请只打包报表文件", "a zip with too many members"),
    "zip-encrypted": ("error", "压缩包有密码，无法读取其中的“{name}”；请去掉密码后重新发送", "an encrypted zip member"),
    "text-cut": ("warning", "“{field}”有 {length} 个字，超过 Excel 单元格上限 32767 字，汇总表中只保留前 32767 字", "a text longer than an Excel cell holds"),
    "undated-mail-after-due": ("warning", "{count} 份来自邮件的文件，邮件上没有日期，已按首次登记时间（截止日之后）判为逾期：{names}。若实际收到得更早，请用 tuanjian merge --received-at 日期 文件… 写明收到日期", "files of dateless mails first registered after their due date"),
    "registered-after-due": ("warning", "{count} 份直接放进收件箱的文件在截止日之后才首次登记，已按首次登记时间判为逾期：{names}。若实际收到得更早，请改用邮件原件（.eml）或 tuanjian merge --fetch 收取，或用 tuanjian merge --received-at 日期 文件… 写明收到日期", "plain files first registered after their due date"),
    "period-long-past": ("warning", "这是{unit}{period}的《{form}》（截止 {due}），截止后 {days} 天才收到；请确认不是发错了期", "a form for a period long past"),
    "due-changed": ("warning", "名单与目标或设置改过以后，{count} 项截止日已过的报送期截止日随之改变{flipped}，按时与逾期已按新的截止日重新判定（汇总表、催报、考核都按当前的名单与设置计算每一个报送期）：{changes}。如这次改动只应对今后的报送期生效，请把设置改回原样", "past periods whose due date a changed roster or setting moved"),
    "not-a-report-file": ("warning", "收件箱里有 {count} 个不是表格的文件，未读取：{names}。如某单位只发来了这些而没有 Excel 报表，请让其用下发的表填写后重新发送", "files in the inbox that are no spreadsheet"),
    "mail-archive-skipped": ("warning", "同一封邮件里还有 {names}，是 zip 以外的压缩包，未读取；如里面有别的单位的报表，请解压后放进收件箱或改用 zip", "a RAR beside the reports of a mail"),
    "mail-deferred": ("warning", "有 {count} 封结构复杂的邮件本次没有读取（本次汇总读过的这类邮件已经太多），下次汇总时再读", "heavy mails left for the next run"),
    "forward-earlier": ("warning", "这份报表是转发来的：原邮件 {sent} 就已发出，收到时间按转发到达的时间计；如原邮件当时已按时报送，可用 tuanjian merge --received-at {day} 文件 更正", "a report forwarded long after its own mail was sent"),
    "period-long-past-more": ("warning", "另有 {count} 份文件也是截止 {days} 天以后才收到的报送期：{names}。请在汇总表“来源”中逐份核对不是发错了期", "more forms for periods long past, counted in one note"),
    "inbox-not-merged": ("warning", "收件箱里有 {count} 份文件还没有汇总：{names}。以上报送情况不含这些文件，请先运行 tuanjian merge 再看（催报也须在汇总之后发）", "files in the inbox no merge has taken yet"),
    "replaced-together": ("warning", "{name} 与 {old} 同时收到（同一封邮件、同一个压缩包或同一次放进收件箱），都是{unit}{period}《{form}》的同一份报告，已按后列出的 {name} 计入；若应以 {old} 为准，请用 tuanjian ledger void 作废 {name}", "two versions of one report arriving together"),
    "late-replaces-on-time": ("warning", "{name} 在截止日（{due}）之后收到，替换了{unit}{period}《{form}》按时报送的 {old}；若它其实是下一期的报告（用上期的表重填），请用本期下发的表重报，并用 tuanjian ledger void 作废 {name}", "a late file replacing one sent on time"),
    "visit-name-close": ("warning", "{unit}{period}的走访“{new}”与已收到的“{old}”只差几个字，已按另一次走访计入；若是同一次走访的更正，请用相同的名称重报", "a visit named almost like one already received"),
    "visit-other-date": ("warning", "{unit}{period}的走访“{org}”走访日期为 {new}，与已收到的同一团组织的走访（走访日期 {old}）不同，已按另一次走访计入；若是同一次走访更正了日期，请与该单位核对", "a visit of an organisation already received, on another date"),
    "recorded-elsewhere": ("warning", "另有 {count} 份文件在上次汇总之后由收信（fetch-mail 或自动收发）登记，本次一并汇总：有效 {valid} 份，有错 {invalid} 份（有错的退回件见上）", "files another command recorded since the last merge"),
    "stated-later-kept": ("warning", "已登记的收到时间 {known}（{basis}）早于这次写明的 {stated}，仍按 {known} 计：同一份内容按最早的一次收到计", "a stated received time later than the one recorded, not taken"),
    "mail-date-future": ("warning", "邮件上写的时间（{date}）晚于登记时间，发件电脑时间可能不准；已按首次登记时间计。如实际收到得更早，可用 tuanjian merge --received-at 日期 文件 更正", "a saved mail dated after it was found"),
    "mail-clock": ("warning", "邮件上写的发信时间（{date}）与收信服务器记录的到达时间（{server}）相差一天以上，发件电脑时间可能不准；已按服务器时间计", "a sender's clock far from the server's"),
    "as-of-too-far": ("error", "统计日 {as_of} 距报送起始期 {start} 超过 {years} 年，请检查 --as-of 或 tuanjian.toml 中 [reporting] 的 start", "an as-of date decades after the reporting start"),
    "no-units": ("error", "单位名单为空", "an empty roster"),
    "mail-unreadable": ("error", "邮件无法解析（{detail}），已跳过；请让对方重新发送", "a mail whose headers or structure cannot be read"),
    "mail-too-many": ("error", "邮件附件中的文件过多（至少 {count} 个，最多接收 {limit} 个），整封邮件不予读取；请只发送报表文件", "a mail bringing too many files"),
    "mail-winmail": ("error", "附件被 Outlook 打包成了 winmail.dat，取不出其中的报表；请对方把邮件格式改为 HTML 或纯文本后重新发送", "an Outlook TNEF attachment"),
    "mail-no-report": ("error", "邮件中没有报表附件（.xlsx 等表格或压缩包）{attached}，请让对方把报表作为附件重新发送", "a saved mail with no spreadsheet attached"),
    "mail-bad-date": ("warning", "邮件的{what}“{value}”不是有效日期，收到时间按{fallback}登记", "a mail date that cannot be read or is out of range"),
    "mail-not-fetched": ("warning", "服务器未交出这封邮件（{reason}），下次收信时再试", "the server refused to hand over one mail"),
    "mail-server-error": ("error", "收信服务器拒绝了请求（{reason}），未收取任何邮件", "the IMAP server refused a session command"),
    # --- mail sent by itself: replies, reminders, watch ---
    "mail-template-brace": ("error", "花括号不成对：“{value}”。占位符写作 {{单位}} 这样；要写花括号本身，请写两个：{{{{ 或 }}}}", "a lone brace in a mail template"),
    "mail-template-placeholder": ("error", "不认识的占位符“{{{value}}}”；这个模板可用的有：{known}", "a placeholder the mail template does not offer"),
    "mail-template-subject": ("error", "第一行应以“主题：”开头，写邮件的主题（现为“{value}”）", "a mail template without its subject line"),
    "mail-template-subject-value": ("error", "主题里不能用占位符“{{{value}}}”：文件名、问题清单等对方文件里的内容只写在正文中；主题可用：{known}", "a subject placeholder that would carry a sender's text"),
    "reply-not-found": ("error", "没有编号为“{value}”的回复（编号见 tuanjian merge --reply 或 tuanjian watch 的输出）", "--resend names no reply"),
    "merge-running": ("error", "这个工作区正在汇总（{holder}），等了 {minutes} 分钟仍未结束；请等它结束后再试", "a merge waiting too long for another"),
    "watch-running": ("error", "已有程序在为这个工作区收发邮件（{holder}）；同一时间只能运行一个，请等它结束或停止后再试", "a second watch (or reply, reminder run) on one workspace"),
    # --- 年底考核 (tuanjian assess) ---
    "assess-rules-default": ("warning", "没有“考核细则”工作表，按内置默认细则计分（分值见年度考核表的“评分说明”）；要修改，可从新建工作区的《名单与目标.xlsx》中把“考核细则”表复制过来", "an older roster workbook without the assessment rules"),
    "assess-item-twice": ("error", "考核项目“{item}”重复（第 {first} 行已有）", "an assessment item listed twice"),
    "assess-too-early": ("error", "统计日 {as_of} 早于 {year} 年，这一年还没有可考核的报送", "an as-of date before the assessed year"),
    "assess-not-ours": ("error", "{detail}，为免覆盖，未写入；请把它改名或移走，或用 -o 另存为别的文件", "the output path holds a file that is not this year's assessment"),
    "assess-adjustment-dropped": ("warning", "上次考核表中“{unit}”的加减分 {value}（{reason}）未保留：该单位不在本次考核的单位中", "a manual adjustment for a unit no longer assessed"),
    "assess-adjustment-text": ("warning", "“{unit}”的加减分“{value}”不是数字，已原样保留，总分中按 0 计；请改为数字（如 -2）", "a manual adjustment that is not a number"),
    "assess-adjustment-range": ("warning", "“{unit}”的加减分 {value} 超出“考核细则”的上限 ±{bound}，已原样保留，总分中按 {counted} 计", "a manual adjustment beyond the rules' bound, counted at the bound"),
    "assess-adjustment-nowhere": ("error", "上次的考核表中有 {count} 个单位填了加减分（{units}），但“考核细则”中没有“加减分”一项，新表没有地方保留它们；为免丢失，未写入。请在《{roster}》的“考核细则”中加回“加减分”一行；确实不再加减分的，先把旧表改名或移走，或用 -o 另存为别的文件", "manual adjustments the new rules have no column for"),
    "assess-previous-unreadable": ("warning", "上次的考核表中{detail}，其中手工填写的加减分无法读出、未能保留；请从旧表的备份 {backup} 中抄回", "the previous assessment's 考核得分 cannot be found by its headings"),
    "assess-nothing-scored": ("warning", "考核表中没有任何得分：{reason}", "an assessment with nothing to score"),
}

@dataclass(frozen=True)
class Issue:
    """One problem, with its place. Positions come from constructors, not by hand."""

    code: str
    severity: Severity
    message: str
    file: str | None = None
    sheet: str | None = None
    cell: str | None = None
    field: str | None = None
    line: int | None = None
    note: str | None = None

    @classmethod
    def make(
        cls,
        code: str,
        *,
        file: str | None = None,
        sheet: str | None = None,
        cell: str | None = None,
        field: str | None = None,
        line: int | None = None,
        note: str | None = None,
        severity: Severity | None = None,
        **params: object,
    ) -> Issue:
        default_severity, template, _ = CATALOGUE[code]
        values = {"field": field or "", **{k: _show(v, SENDER_TEXT_SHOWN if k in SENDER_KEYS else None)
                                           for k, v in params.items()}}
        return cls(
            code=code,
            severity=severity or default_severity,
            message=template.format(**values),
            file=one_line(file) if file is not None else None,
            sheet=one_line(sheet) if sheet is not None else None,
            cell=cell,
            field=field,
            line=line,
            note=note,
        )

    @property
    def place(self) -> str:
        """'名单与目标.xlsx · 单位名单 · C5 · 单位类型' or 'tuanjian.toml · 第 12 行 · folders.inbox'."""
        parts = [self.file, self.sheet, self.cell]
        if self.line is not None:
            parts.append(f"第 {self.line} 行")
        parts.append(self.field)
        return " · ".join(p for p in parts if p)

    def render(self) -> str:
        label = "错误" if self.severity == "error" else "提醒"
        text = f"{label}：{self.place}：{self.message}" if self.place else f"{label}：{self.message}"
        return f"{text}（{self.note}）" if self.note else text

    def to_dict(self) -> dict:
        return asdict(self)


def _show(value: object, limit: int | None = None) -> str:
    if isinstance(value, (list, tuple, set)):
        return "、".join(one_line(str(v), limit) for v in value)
    return one_line(str(value), limit)


# what a sender typed or named (a cell's value, a sheet's or an organisation's name) is shown at most this long in
# a message: the message names it, it does not carry it — a paragraph typed in a cell must not become a paragraph of
# the committee's own mail (a 退回 goes to the unit's roster address, from the official mailbox)
SENDER_KEYS = frozenset({"value", "raw", "text", "org", "new", "old", "name", "first", "sender", "task", "column"})
SENDER_TEXT_SHOWN = 60
_BREAKS = re.compile("\r\n|[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]")
# the other control characters (ESC starts a terminal's commands, BEL rings, CR rewrites a line) and the marks that
# reverse the order text is shown in
_CONTROLS = re.compile("[\x00-\x08\x0e-\x1b\x1f\x7f-\x84\x86-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def without_controls(text: str) -> str:
    """Text with every control character but the line breaks and tabs shown as �: what a console may print."""
    return _CONTROLS.sub("\ufffd", text)


# what merge keeps with a file about the files received before it (merge.stored_notes): for staff — they name what
# to run — never in the unit's 回执, and not of a file staff withdrew
STAFF_NOTES = frozenset({"visit-name-close", "visit-other-date", "replaced-together", "late-replaces-on-time"})
# … and with them what is said of how a file came (another unit's address, a sender's clock, a late forward): for
# staff — what to check or run — never in what goes back to the unit (its 回执, its 退回 and 退回件)
STAFF_ONLY = STAFF_NOTES | {"sender-mismatch", "mail-clock", "mail-date-future", "forward-earlier"}


def one_line(text: str, limit: int | None = None) -> str:
    """Text from outside (a cell, a file or attachment name) as messages, mails and the console show it: on one line,
    each line break shown as ⏎, a tab as a space, any other control character as �; cut to `limit` characters
    with … when given. Text without them is returned as it is."""
    if not text.isprintable():
        text = without_controls(_BREAKS.sub("⏎", text.replace("\t", " ")))
    if limit is not None and len(text) > limit:
        text = text[:limit - 1] + "…"
    return text


@dataclass
class Report:
    """A list of issues with the small helpers tests and the CLI need."""

    issues: list[Issue] = field(default_factory=list)

    def add(self, issue: Issue) -> None:
        self.issues.append(issue)

    def extend(self, issues: Iterable[Issue]) -> None:
        self.issues.extend(issues)

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def flatten(self, keys: Iterable[str]) -> list[list]:
        keys = list(keys)
        return [[getattr(i, k) for k in keys] for i in self.issues]


class TuanjianError(Exception):
    """Raised by library entry points when the job cannot go on; carries the issues that say why."""

    def __init__(self, issues: Iterable[Issue] | Issue | str):
        if isinstance(issues, str):
            issues = [Issue(code="failed", severity="error", message=issues)]
        elif isinstance(issues, Issue):
            issues = [issues]
        self.issues = list(issues)
        super().__init__("\n".join(i.render() for i in self.issues))


_SAMPLES = {"field": "团干部", "value": "-2", "file": "源汇区团委_2026年3月.xlsx", "key": "folders.inbox", "unit": "源汇区团委",
            "form": "附件1 团干部走基层情况报告单", "period": "2026-03", "version": 1, "current": 2, "latest": 2,
            "task": "1-3-2", "unit_type": "县区团委", "known": "visit_report、observation_report", "name": "问题清单",
            "column": "单位名称", "ext": ".xls", "size": 80, "reason": "没有写入权限", "count": 3, "limit": 500,
            "until": "2026-12-31", "due": "2026-04-10", "days": 40, "kind": "月份", "task_kind": "比率", "most": "100%", "example": "2026-03",
            "first": 5, "expected": "2026-03", "raw": "5人", "choices": "座谈交流、实地走访"}


def catalogue_markdown() -> str:
    """docs/问题代码.md: every code with its severity, Chinese message (with sample values) and English gloss.
    Generated from CATALOGUE, so it cannot drift (a test compares the committed file)."""
    import string

    lines = ["# 问题代码 · Issue codes", "",
             "由 `tuanjian_xlsx/issues.py` 的 CATALOGUE 生成（`python scripts/issue_docs`），请勿手改。",
             "Generated from the catalogue; do not edit by hand.", "",
             "| 代码 code | 级别 | 中文说明（示例） | English |", "|---|---|---|---|"]
    for code, (severity, template, gloss) in CATALOGUE.items():
        names = {f for _, f, _, _ in string.Formatter().parse(template) if f}
        example = template.format(**{n: _SAMPLES.get(n, "…") for n in names})
        level = "错误" if severity == "error" else "提醒"
        lines.append(f"| `{code}` | {level} | {example.replace('|', '｜')} | {gloss} |")
    return "\n".join(lines) + "\n"


class ConfigError(TuanjianError):
    """The workspace configuration is not usable."""
