"""`tuanjian demo`: the whole loop on the plan's own roster — init, templates, half a year of realistic
submissions (some late, some missing, one invalid, one resubmitted, one retyped without passport), merge, status,
and the year's assessment so far.
"""

from __future__ import annotations

import datetime as dt
import io
import random
from dataclasses import dataclass, field
from pathlib import Path

import openpyxl

from .assess import Assessment, assess
from .build import Prefill, build_template, build_templates
from .plan import Workspace
from .issues import Issue, TuanjianError
from .merge import MergeResult, merge
from .periods import Period
from .fieldtypes import TASK_KINDS
from .filenames import safe_filename
from .status import reminders
from .workspace import init_workspace

AS_OF = dt.date(2026, 7, 15)
START = "2026-01"
SEED = 20200703
# The plan's forms this scenario fills (the values it makes up are their fields'), by their part in it.
VISITS, OBSERVATIONS, TARGETS = "visit_report", "observation_report", "target_tracker"

ORGS = ["第一中学团委", "实验中学团委", "职业技术学校团委", "工业园区团工委", "人民医院团支部", "城关镇团委",
        "商务区青年之家", "农商银行团支部", "交通运输局团支部", "新时代文明实践站"]
FORMS = ["实地走访", "座谈交流", "电话或视频访谈", "问卷调研"]
WORK = ["召开团支部委员会，部署“三会两制一课”落实情况；", "组织团员开展志愿服务，参与社区环境整治；",
        "开展青年大学习集中学习，参学率明显提升；", "举办主题团日活动，团员参与积极。"]
HIGHLIGHTS = ["团员发展规范，档案齐全；", "青年之家活动丰富，节假日开放；", "结合行业特点开展技能比武；", "团干部配备到位，职责清晰。"]
PROBLEMS = ["部分团员组织关系未及时转接；", "活动经费不足；", "团干部兼职较多，精力有限；", ""]
MEASURES = ["指导建立团员台账，一个月内完成转接；", "协调党组织支持活动经费；", "组织团干部培训一次。", ""]


@dataclass
class DemoResult:
    root: Path
    merge: MergeResult
    manifest: list[dict] = field(default_factory=list)
    reminders: dict[str, str] = field(default_factory=dict)
    assessment: Assessment | None = None  # the year's assessment for the half year, as of the demo's day


def _fill(data: bytes, spec, records: list[dict]) -> bytes:
    """Type values into a distributed copy as a person would: one sheet per visit (copies of the form sheet)."""
    wb = openpyxl.load_workbook(io.BytesIO(data))
    first = wb[spec.sheet_name]
    sheets = [first] + [wb.copy_worksheet(first) for _ in records[1:]]
    for n, (ws, values) in enumerate(zip(sheets, records)):
        if n:
            ws.title = f"{spec.sheet_name} ({n + 1})"
        for f in spec.fields:
            if f.id in values:
                ws[f.input_cell] = values[f.id]
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _visit(rng: random.Random, period: Period, cadres: int | None = None) -> dict:
    return {
        "fill_date": dt.datetime(period.year, period.index, rng.randint(2, 7)),
        "name": rng.choice(["王磊", "李静", "张伟", "刘洋", "陈晨", "赵敏", "孙浩", "周婷"]),
        "position": rng.choice(["书记", "副书记", "部长", "干事"]),
        "org_name": rng.choice(ORGS),
        "visit_form": rng.choice(FORMS),
        "cadre_count": cadres if cadres is not None else rng.randint(1, 6),
        "youth_count": rng.randint(5, 40),
        "work_status": "".join(rng.sample(WORK, 2)),
        "highlights": rng.choice(HIGHLIGHTS),
        "problems": rng.choice(PROBLEMS),
        "measures": rng.choice(MEASURES),
    }


def _due(ws: Workspace, unit, form_id: str, period: Period) -> dt.date:
    due = ws.roster.due(unit, form_id, period)
    assert due is not None  # the demo sends only what a unit files (roster.units_filing)
    return due


def _received(rng: random.Random, due: dt.date, late: bool) -> dt.datetime:
    day = due + dt.timedelta(days=rng.randint(1, 4)) if late else due - dt.timedelta(days=rng.randint(0, 8))
    when = dt.datetime.combine(day, dt.time(rng.randint(8, 17), rng.choice([0, 15, 30, 45])))
    return min(when, dt.datetime.combine(AS_OF, dt.time(8, 30)))  # nothing arrives after the demo's day


def run_demo(root: Path) -> DemoResult:
    """Make a demo workspace at `root` and run the month-by-month loop on it, as of 2026-07-15."""
    root = Path(root)
    if (root / "tuanjian.toml").exists():
        raise TuanjianError(Issue.make("workspace-exists", file="tuanjian.toml"))
    init_workspace(root)
    toml = root / "tuanjian.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace('start = ""', f'start = "{START}"'), encoding="utf-8")
    ws = Workspace.load(root)
    build_templates(ws)
    rng = random.Random(SEED)
    inbox = ws.folder("inbox")
    manifest: list[dict] = []
    received: dict[Path, dt.datetime] = {}

    def send(unit, spec, period: Period, records: list[dict], when: dt.datetime, tag: str, data: bytes | None = None):
        stem = safe_filename(f"{unit.name}_{period.code}_{spec.attachment or spec.title}_{tag}")
        path = inbox / f"{stem}.xlsx"
        if data is None:
            copy = build_template(spec, ws.roster, prefill=Prefill(unit, period.code, period.label))
            data = _fill(copy, spec, records)
        path.write_bytes(data)
        received[path] = when
        manifest.append({"path": path, "unit": unit.name, "form_id": spec.form_id, "period": period.code,
                         "received": when, "tag": tag, "records": records})

    visit = ws.spec(VISITS)
    missing = {("舞阳县团委", 5), ("统战部", 6), ("市青年创业服务中心（市志愿者服务中心）", 6), ("西城区团工委", 6)}
    late = {("召陵区团委", 3), ("青发部", 4), ("临颍县团委", 6), ("宣传部", 2)}
    for month in range(1, 7):
        period = Period(2026, "month", month)
        for unit in ws.roster.units_filing(visit.form_id):
            if (unit.name, month) in missing:
                continue
            due = _due(ws, unit, visit.form_id, period)
            when = _received(rng, due, (unit.name, month) in late)
            if (unit.name, month) == ("西城区团工委", 2):  # retyped from the Word attachment: no passport
                rec = _visit(rng, period)
                send(unit, visit, period, [rec], when, "自制表", _retyped(unit.name, period, rec))
                continue
            records = [_visit(rng, period) for _ in range(rng.choice([1, 1, 2]))]
            if (unit.name, month) == ("临颍县团委", 4):  # invalid first, corrected two days later
                bad = dict(records[0], youth_count="十几人")  # not an exact number: refused
                send(unit, visit, period, [bad] + records[1:], when, "初报")
                send(unit, visit, period, records, when + dt.timedelta(days=2), "更正")
                continue
            send(unit, visit, period, records, when, "走基层")
            if (unit.name, month) == ("源汇区团委", 5):  # resubmitted with a corrected count: supersedes the visit
                again = [dict(records[0], cadre_count=records[0]["cadre_count"] + 2)] + records[1:]
                send(unit, visit, period, again, when + dt.timedelta(days=1), "重报")

    observation = ws.spec(OBSERVATIONS)
    tracker = ws.spec(TARGETS)
    for q in (1, 2):
        period = Period(2026, "quarter", q)
        for unit in ws.roster.units_filing(observation.form_id):
            if (unit.name, q) in {("社联部", 2), ("召陵区团委", 2)}:
                continue
            when = _received(rng, _due(ws, unit, observation.form_id, period), (unit.name, q) == ("学校部", 1))
            rec = {"fill_date": dt.datetime(2026, 3 * q, rng.randint(15, 25)), "department": unit.name,
                   "participants": "、".join(rng.sample(["王磊", "李静", "张伟", "刘洋", "陈晨", "赵敏"], 3)),
                   "sites": f"{rng.choice(ORGS)}：{rng.choice(WORK)}", "highlights": rng.choice(HIGHLIGHTS),
                   "problems": rng.choice(PROBLEMS), "measures": rng.choice(MEASURES)}
            send(unit, observation, period, [rec], when, "观摩")
        for unit in ws.roster.units_filing(tracker.form_id):
            if (unit.name, q) == ("市教育局青工委", 2):
                continue
            when = _received(rng, _due(ws, unit, tracker.form_id, period), (unit.name, q) == ("经济技术开发区团工委", 2))
            copy = build_template(tracker, ws.roster, prefill=Prefill(unit, period.code, period.label))
            rows = _tracker_values(rng, ws, unit, q)
            send(unit, tracker, period, rows, when, "台账", _fill_tracker(copy, tracker, rows, period))

    # the simulated arrival times stand for mails taken from the committee's mailbox
    result = merge(root, as_of=AS_OF, now=dt.datetime.combine(AS_OF, dt.time(9, 0)), received=received,
                   received_basis="mailbox")
    assessment = assess(root, year=AS_OF.year, as_of=AS_OF)
    return DemoResult(root, result, manifest, reminders(ws, result.items, AS_OF), assessment)


def _retyped(unit: str, period: Period, rec: dict) -> bytes:
    """The form retyped by hand in a blank workbook, labels in column B and values beside them."""
    wb = openpyxl.Workbook()
    sh = wb.active
    sh.title = "走基层"
    sh["B1"] = "团干部走基层情况报告单"
    rows = [("报送单位：", unit), ("报送期：", period.label), ("填表时间：", rec["fill_date"]), ("姓  名", rec["name"]),
            ("单位职务", rec["position"]), ("走访团组织名称", rec["org_name"]), ("走访形式", rec["visit_form"]),
            ("团干部", rec["cadre_count"]), ("团员青年", rec["youth_count"]),
            ("基层团组织工作开展情况", rec["work_status"]), ("基层团组织工作亮点", rec["highlights"]),
            ("基层团组织工作存在问题", rec["problems"]), ("帮扶措施及成效", rec["measures"])]
    for i, (label, value) in enumerate(rows, start=3):
        sh.cell(row=i, column=2, value=label)
        sh.cell(row=i, column=3, value=value)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _tracker_values(rng: random.Random, ws: Workspace, unit, q: int) -> list[dict]:
    rows = []
    for task in ws.roster.tasks_for(unit.type):
        row: dict[str, object] = {"code": task.code}
        if TASK_KINDS[task.kind].pair:
            base = rng.randint(5, 40)
            done = int(base * rng.uniform(0.3, 1.0) + q)  # a growth may be more than its base
            row["done"], row["base"] = min(base, done) if TASK_KINDS[task.kind].not_above else done, base
        elif task.kind == "count":
            row["done"] = rng.randint(0, 4)
        elif task.kind == "yesno":
            row["done"] = rng.choice(["是", "是", "是", "否"])
        row["progress"] = rng.choice(["按计划推进。", "已完成阶段任务。", "正在摸底排查。"])
        rows.append(row)
    return rows


def _fill_tracker(data: bytes, spec, rows: list[dict], period: Period) -> bytes:
    wb = openpyxl.load_workbook(io.BytesIO(data))
    sh = wb[spec.sheet_name]
    col = {c.id: openpyxl.utils.get_column_letter(i + 1) for i, c in enumerate(spec.columns)}
    where = {sh[f"A{r}"].value: r for r in range(spec.header_row + 1, sh.max_row + 1)}
    sh[spec.field("fill_date").input_cell] = dt.datetime(period.year, period.months[1], 28)
    for row in rows:
        r = where[row["code"]]
        for key in ("done", "base", "progress"):
            if key in row:
                sh[f"{col[key]}{r}"] = row[key]
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
