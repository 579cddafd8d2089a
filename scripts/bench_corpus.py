#!/usr/bin/env python3
"""The benchmark's corpus: submissions shaped like the ones people send back, not our own builder's output.

    .venv/bin/python scripts/bench_corpus.py 1000 [--invalid 0.05]     # make (or reuse) it and describe it

Each submission starts as the product's distributed copy for its unit and period (`build_template` with the
prefill and protection `distribute` uses), is filled by label the way a person types into it (openpyxl finds the
label, types into the cell beside it; dates as dates or as “2026年3月5日”, counts as 5 or “5人”, a second visit on a
copied sheet) and saved by openpyxl. Then, as people's programs save them:

  ~72 %  saved by openpyxl (Excel-like: shared strings, full styles, the hidden _lists sheet kept)
  ~22 %  opened and saved again by LibreOffice as .xlsx (soffice --convert-to, batched, two at a time)
   ~6 %  saved by LibreOffice as .ods
  and, of all of these, ~5 % sent inside zips (half with GBK member names, some in folders) and ~3 % as
  attachments of saved mails (.eml); about `--invalid` of them have a mistake people make: text in a count cell,
  a required field left empty, the date of another period.

Cached under .bench/corpus-<n>-<invalid %>/ (a workspace whose 收件箱 holds the corpus); remade when the templates'
spec digests, the generator or the request change. `corpus.json` beside it says what it holds.

100,000 submissions (`--copies 10` of the 10,000 corpus, as bench_merge --huge makes them) are the 10,000 ten times
over, each copy a folder of its own and each file made distinct by a zip comment (a zip's and a mail's members
too): every one is new content to the ledger and reads as the same records again, so later copies supersede
earlier ones — a stress of intake, not of the master's size.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import email.policy
import hashlib
import io
import json
import multiprocessing
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GENERATOR = 3  # bump when what is generated changes: every cached corpus is remade
YEARS = range(2020, 2027)
FORM_SHARES = (("visit_report", 0.8), ("observation_report", 0.1), ("target_tracker", 0.1))
SAVERS = (("openpyxl", 0.72), ("lo-xlsx", 0.22), ("lo-ods", 0.06))
ZIP_SHARE, MAIL_SHARE = 0.05, 0.03
LO_BATCH = 100  # files per soffice call (one call silently stops after ~250)
ORGS = ["第一中学团委", "实验中学团委", "职业技术学校团委", "工业园区团工委", "人民医院团支部", "城关镇团委",
        "商务区青年之家", "农商银行团支部", "交通运输局团支部", "新时代文明实践站", "沙澧社区团支部", "高铁站团支部"]
PEOPLE = ["王磊", "李静", "张伟", "刘洋", "陈晨", "赵敏", "孙浩", "周婷"]
WORK = ["召开团支部委员会，部署“三会两制一课”落实情况；", "组织团员开展志愿服务，参与社区环境整治；",
        "开展青年大学习集中学习，参学率明显提升；", "举办主题团日活动，团员参与积极。"]
HIGHLIGHTS = ["团员发展规范，档案齐全；", "青年之家活动丰富，节假日开放；", "结合行业特点开展技能比武；", "团干部配备到位，职责清晰。"]
PROBLEMS = ["部分团员组织关系未及时转接；", "活动经费不足；", "团干部兼职较多，精力有限；", ""]
MEASURES = ["指导建立团员台账，一个月内完成转接；", "协调党组织支持活动经费；", "组织团干部培训一次。", ""]
MISTAKES = ("count-text", "missing", "other-period")


@dataclasses.dataclass
class Item:
    """One submission to make."""

    index: int
    form_id: str
    unit_id: str
    period: str
    saver: str  # openpyxl | lo-xlsx | lo-ods
    mistake: str | None
    visits: int
    seed: int
    stem: str = ""


# --- the plan: what each submission is --------------------------------------------------------------------


def _pick(rng: random.Random, shares) -> str:
    x, acc = rng.random(), 0.0
    for name, share in shares:
        acc += share
        if x < acc:
            return name
    return shares[-1][0]


def plan(n: int, invalid: float, ws) -> list[Item]:
    from tuanjian_xlsx.filenames import safe_filename
    from tuanjian_xlsx.periods import Period

    rng = random.Random(f"{n}/{invalid}")
    filing = {f: ws.roster.units_filing(f) for f, _ in FORM_SHARES}
    items = []
    for i in range(n):
        form_id = _pick(rng, FORM_SHARES)
        unit = rng.choice(filing[form_id])
        year = rng.choice(YEARS)
        p = Period(year, "month", rng.randint(1, 12)) if form_id == "visit_report" else \
            Period(year, "quarter", rng.randint(1, 4))
        mistake = rng.choice(MISTAKES) if rng.random() < invalid else None
        visits = 2 if form_id == "visit_report" and rng.random() < 0.1 else 1
        item = Item(i, form_id, unit.id, p.code, _pick(rng, SAVERS), mistake, visits, rng.randrange(1 << 30))
        spec = ws.spec(form_id)
        item.stem = safe_filename(f"{unit.name}_{p.label}_{spec.file_stem}_{i:06d}")
        items.append(item)
    return items


# --- making them: in worker processes -----------------------------------------------------------------------

_STATE: dict = {}


def _start(ws_dir: str) -> None:
    from tuanjian_xlsx.plan import Workspace

    _STATE["ws"] = Workspace.load(Path(ws_dir))
    _STATE["copies"] = {}
    _STATE["cells"] = {}


def _norm(text) -> str:
    return re.sub(r"[\s:：]", "", str(text or ""))


def _beside(sheet, label: str) -> str:
    """The input cell right of the cell reading `label`, past its merged range: where a person types."""
    want = _norm(label)
    for row in sheet.iter_rows():
        for cell in row:
            if isinstance(cell.value, str) and _norm(cell.value) == want:
                right = cell.column
                for rng in sheet.merged_cells.ranges:
                    if cell.coordinate in rng:
                        right = rng.max_col
                return sheet.cell(row=cell.row, column=right + 1).coordinate
    raise KeyError(label)


def _copy(item: Item) -> bytes:
    """The distributed copy for the item's unit and period, as `tuanjian distribute` makes it."""
    from tuanjian_xlsx.build import Prefill, build_template
    from tuanjian_xlsx.periods import parse_period

    key = (item.form_id, item.unit_id, item.period)
    if key not in _STATE["copies"]:
        ws = _STATE["ws"]
        spec, unit, p = ws.spec(item.form_id), next(u for u in ws.roster.units if u.id == item.unit_id), \
            parse_period(item.period)
        due = ws.roster.due(unit, spec.form_id, p)
        _STATE["copies"][key] = build_template(spec, ws.roster, prefill=Prefill(unit, p.code, p.label, due),
                                               password=ws.settings.protection.password)
    return _STATE["copies"][key]


def _where(spec, sheet) -> dict[str, str]:
    """Label -> input cell of each field, found by label once per form."""
    if spec.form_id not in _STATE["cells"]:
        _STATE["cells"][spec.form_id] = {f.id: _beside(sheet, f.label_text) for f in spec.fields}
    return _STATE["cells"][spec.form_id]


def _date(rng: random.Random, when: dt.date):
    """A date as people type it: mostly a date, sometimes text."""
    x = rng.random()
    if x < 0.85:
        return dt.datetime(when.year, when.month, when.day)
    if x < 0.95:
        return f"{when.year}年{when.month}月{when.day}日"
    return when.isoformat()


def _count(rng: random.Random, n: int):
    return f"{n}人" if rng.random() < 0.05 else n


def _visit(rng: random.Random, p, mistake: str | None) -> dict:
    day = dt.date(p.year, p.index, rng.randint(1, 7) if rng.random() < 0.9 else rng.randint(8, 25))
    if mistake == "other-period":
        day = day.replace(year=p.year - 1)
    values = {
        "fill_date": _date(rng, day), "name": rng.choice(PEOPLE), "position": rng.choice(["书记", "副书记", "部长", "干事"]),
        "org_name": f"{rng.choice(ORGS)}{rng.randint(1, 30)}", "visit_form": rng.choice(["实地走访", "座谈交流", "电话或视频访谈", "问卷调研"]),
        "cadre_count": _count(rng, rng.randint(1, 6)), "youth_count": _count(rng, rng.randint(3, 40)),
        "work_status": "".join(rng.sample(WORK, rng.randint(1, 3))) * rng.randint(1, 3),
        "highlights": rng.choice(HIGHLIGHTS), "problems": rng.choice(PROBLEMS), "measures": rng.choice(MEASURES),
    }
    if mistake == "count-text":
        values[rng.choice(["cadre_count", "youth_count"])] = rng.choice(["十几人", "若干", "多人", "见附件"])
    elif mistake == "missing":
        values[rng.choice(["name", "org_name", "work_status"])] = None
    return values


def _observation(rng: random.Random, p, unit, mistake: str | None) -> dict:
    day = dt.date(p.year, p.months[-1], rng.randint(10, 25))
    if mistake == "other-period":
        day = day.replace(year=p.year - 1)
    values = {"fill_date": _date(rng, day), "department": unit.name,
              "participants": "、".join(rng.sample(PEOPLE, 3)), "sites": f"{rng.choice(ORGS)}：{rng.choice(WORK)}",
              "highlights": rng.choice(HIGHLIGHTS), "problems": rng.choice(PROBLEMS), "measures": rng.choice(MEASURES)}
    if mistake in ("missing", "count-text"):  # no count on this form: a required text left empty
        values[rng.choice(["participants", "sites", "highlights"])] = None
    return values


def _fill_form(wb, spec, records: list[dict]) -> None:
    first = wb[spec.sheet_name]
    cells = _where(spec, first)
    sheets = [first] + [wb.copy_worksheet(first) for _ in records[1:]]
    for n, (sheet, values) in enumerate(zip(sheets, records)):
        if n:
            sheet.title = f"{spec.sheet_name} ({n + 1})"
        for fid, value in values.items():
            sheet[cells[fid]] = value


def _fill_tracker(wb, spec, rng: random.Random, p, unit, mistake: str | None) -> None:
    from openpyxl.utils import get_column_letter

    from tuanjian_xlsx.fieldtypes import TASK_KINDS

    ws = _STATE["ws"]
    sheet = wb[spec.sheet_name]
    cells = _where(spec, sheet)
    col = {c.id: get_column_letter(i + 1) for i, c in enumerate(spec.columns)}
    where = {sheet[f"A{r}"].value: r for r in range(spec.header_row + 1, sheet.max_row + 1)}
    day = dt.date(p.year, p.months[-1], 28) if mistake != "other-period" else dt.date(p.year - 1, p.months[-1], 28)
    sheet[cells["fill_date"]] = None if mistake == "missing" else _date(rng, day)
    tasks = ws.roster.tasks_for(unit.type)
    wrong = rng.choice([t for t in tasks if TASK_KINDS[t.kind].numeric] or tasks).code
    for task in tasks:
        r = where[task.code]
        if TASK_KINDS[task.kind].pair:
            base = rng.randint(5, 40)
            sheet[f"{col['done']}{r}"] = min(base, int(base * rng.uniform(0.3, 1.0) + p.index))
            sheet[f"{col['base']}{r}"] = base
        elif task.kind == "count":
            sheet[f"{col['done']}{r}"] = rng.randint(0, 4)
        elif task.kind == "yesno":
            sheet[f"{col['done']}{r}"] = rng.choice(["是", "是", "是", "否"])
        if mistake == "count-text" and task.code == wrong:
            sheet[f"{col['done']}{r}"] = rng.choice(["大部分", "基本完成", "若干"])
        sheet[f"{col['progress']}{r}"] = rng.choice(["按计划推进。", "已完成阶段任务。", "正在摸底排查。"])


def make(item: Item, out_dir: str) -> str:
    """Fill the item's distributed copy as a person would and save it with openpyxl; the file's path."""
    import openpyxl

    from tuanjian_xlsx.periods import parse_period

    ws = _STATE["ws"]
    rng = random.Random(item.seed)
    spec, unit, p = ws.spec(item.form_id), next(u for u in ws.roster.units if u.id == item.unit_id), \
        parse_period(item.period)
    wb = openpyxl.load_workbook(io.BytesIO(_copy(item)))
    if item.form_id == "visit_report":
        records = [_visit(rng, p, item.mistake if k == 0 else None) for k in range(item.visits)]
        _fill_form(wb, spec, records)
    elif item.form_id == "observation_report":
        _fill_form(wb, spec, [_observation(rng, p, unit, item.mistake)])
    else:
        _fill_tracker(wb, spec, rng, p, unit, item.mistake)
    path = Path(out_dir) / f"{item.stem}.xlsx"
    wb.save(path)
    return str(path)


def _make(args) -> str:
    return make(*args)


# --- LibreOffice: batched, one profile per concurrent soffice ----------------------------------------------


def _soffice(files: list[Path], outdir: Path, target: str, profile: Path) -> None:
    binary = shutil.which("soffice") or shutil.which("libreoffice")
    cmd = [binary, f"-env:UserInstallation={profile.as_uri()}", "--headless", "--norestore", "--convert-to",
           target, "--outdir", str(outdir), *map(str, files)]
    subprocess.run(cmd, capture_output=True, timeout=1800, check=False)


def resave(files: list[Path], outdir: Path, ext: str, jobs: int, scratch: Path) -> list[Path]:
    """Each file opened and saved again by LibreOffice as .xlsx or .ods; the files it did not write (after one
    retry on their own) are left out of the answer."""
    target = "xlsx:Calc MS Excel 2007 XML" if ext == ".xlsx" else "ods"
    outdir.mkdir(parents=True, exist_ok=True)
    batches = [files[k:k + LO_BATCH] for k in range(0, len(files), LO_BATCH)]

    def run(k: int) -> None:
        _soffice(batches[k], outdir, target, scratch / f"lo-profile-{k % jobs}")

    for round_ in range(2):
        with ThreadPoolExecutor(jobs) as pool:  # two soffice at once: a profile each, or they share one instance
            for k0 in range(0, len(batches), jobs):
                list(pool.map(run, range(k0, min(k0 + jobs, len(batches)))))
        missing = [f for f in files if not (outdir / (f.stem + ext)).exists()]
        if not missing or round_:
            break
        batches = [missing[k:k + 20] for k in range(0, len(missing), 20)]
    return [outdir / (f.stem + ext) for f in files if (outdir / (f.stem + ext)).exists()]


# --- containers ----------------------------------------------------------------------------------------------


def gbk_zip(members: dict[str, bytes]) -> bytes:
    """A zip as Chinese Windows tools write it: names in GBK, no UTF-8 flag."""
    buf = io.BytesIO()
    placeholders = {}
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for n, (name, body) in enumerate(members.items()):
            raw = name.encode("gbk")
            fake = f"{n:04d}" + "x" * (len(raw) - 4)
            placeholders[fake.encode()] = raw
            z.writestr(fake, body)
    data = buf.getvalue()
    for fake_b, raw in placeholders.items():
        data = data.replace(fake_b, raw)
    return data


def utf8_zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, body in members.items():
            z.writestr(name, body)
    return buf.getvalue()


def mail(unit, files: list[Path], when: dt.datetime) -> bytes:
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["Subject"] = f"{unit.name}报送材料"
    msg["From"] = f"{unit.name} <{unit.email or 'tuanwei@example.cn'}>"
    msg["To"] = "zuzhibu@example.cn"
    msg["Date"] = format_datetime(when.replace(tzinfo=dt.timezone(dt.timedelta(hours=8))))
    msg.set_content("请查收附件。")
    for f in files:
        sub = "vnd.oasis.opendocument.spreadsheet" if f.suffix == ".ods" else \
            "vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        msg.add_attachment(f.read_bytes(), maintype="application", subtype=sub, filename=f.name)
    return bytes(msg)


def pack(items: list[Item], made: dict[int, Path], inbox: Path, ws, rng: random.Random) -> dict[str, int]:
    """Move each made file into the inbox: most as they are, some inside zips and saved mails."""
    units = {u.id: u for u in ws.roster.units}
    order = [it for it in items if it.index in made]
    rng.shuffle(order)
    n_zip, n_mail = int(len(order) * ZIP_SHARE), int(len(order) * MAIL_SHARE)
    zipped, mailed, plain = order[:n_zip], order[n_zip:n_zip + n_mail], order[n_zip + n_mail:]
    counts = {"zips": 0, "in_zips": 0, "gbk_zips": 0, "mails": 0, "in_mails": 0}
    k = 0
    while k < len(zipped):
        group = zipped[k:k + rng.randint(2, 5)]
        k += len(group)
        folder = rng.random() < 0.5
        members = {(f"{units[it.unit_id].name}/{it.period}/" if folder else "") + made[it.index].name:
                   made[it.index].read_bytes() for it in group}
        gbk = counts["zips"] % 2 == 0
        data = gbk_zip(members) if gbk else utf8_zip(members)
        (inbox / f"报表打包_{group[0].index:06d}.zip").write_bytes(data)
        counts["zips"] += 1
        counts["gbk_zips"] += gbk
        counts["in_zips"] += len(group)
    k = 0
    while k < len(mailed):
        group = mailed[k:k + rng.randint(1, 3)]
        k += len(group)
        unit = units[group[0].unit_id]
        when = dt.datetime(2026, rng.randint(1, 12), rng.randint(1, 28), rng.randint(8, 18), rng.randint(0, 59))
        data = mail(unit, [made[it.index] for it in group], when)
        (inbox / f"来信_{group[0].index:06d}.eml").write_bytes(data)
        counts["mails"] += 1
        counts["in_mails"] += len(group)
    for it in plain:
        shutil.move(str(made[it.index]), inbox / made[it.index].name)
    return counts


# --- the corpus --------------------------------------------------------------------------------------------


def key_of(n: int, invalid: float) -> str:
    from tuanjian_xlsx.plan import Plan

    plan_ = Plan.builtin()
    digests = ",".join(f"{s.form_id}:{s.version}:{s.digest}" for s in plan_.registry.specs.values())
    return hashlib.sha256(f"{GENERATOR}|{n}|{invalid}|{digests}".encode()).hexdigest()


def corpus(n: int, invalid: float = 0.05, cache: Path = ROOT / ".bench", jobs: int | None = None,
           log=print, copies: int = 1) -> Path:
    """A workspace whose 收件箱 holds `n` submissions (cached; remade when the templates or this generator change);
    with `copies`, that many distinct copies of the `n` corpus (n × copies submissions)."""
    ws_dir = cache / (f"corpus-{n}-{round(invalid * 100)}" + (f"-x{copies}" if copies > 1 else ""))
    key = key_of(n, invalid) + (f"x{copies}" if copies > 1 else "")
    stamp = ws_dir / "corpus.key"
    if stamp.exists() and stamp.read_text() == key and (ws_dir / "corpus.json").exists():
        return ws_dir
    if copies > 1:
        base = corpus(n, invalid, cache, jobs, log)
        shutil.rmtree(ws_dir, ignore_errors=True)
        info = replicate(base, copies, ws_dir, log)
        (ws_dir / "corpus.json").write_text(json.dumps(info, ensure_ascii=False, indent=1), encoding="utf-8")
        stamp.write_text(key)
        return ws_dir
    from tuanjian_xlsx.plan import Workspace
    from tuanjian_xlsx.workspace import init_workspace

    jobs = jobs or os.cpu_count() or 1
    t0 = time.perf_counter()
    shutil.rmtree(ws_dir, ignore_errors=True)
    init_workspace(ws_dir)
    toml = ws_dir / "tuanjian.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace('start = ""', 'start = "2020-01"'), encoding="utf-8")
    ws = Workspace.load(ws_dir)
    items = plan(n, invalid, ws)
    scratch = Path(tempfile.mkdtemp(prefix="corpus-", dir=cache))
    made_dir = scratch / "openpyxl"
    made_dir.mkdir()
    with multiprocessing.get_context("fork").Pool(jobs, _start, (str(ws_dir),)) as pool:
        paths = pool.map(_make, [(it, str(made_dir)) for it in items], chunksize=16)
    made = {it.index: Path(p) for it, p in zip(items, paths)}
    log(f"  openpyxl 填写并保存 {len(made)} 份（{time.perf_counter() - t0:.0f} s）")
    counts = {"openpyxl": 0, "lo-xlsx": 0, "lo-ods": 0}
    for saver, ext in (("lo-xlsx", ".xlsx"), ("lo-ods", ".ods")):
        chosen = [made[it.index] for it in items if it.saver == saver]
        if not chosen or not (shutil.which("soffice") or shutil.which("libreoffice")):
            continue
        t1 = time.perf_counter()
        done = {p.stem: p for p in resave(chosen, scratch / saver, ext, jobs, scratch)}
        for it in items:
            if it.saver == saver and made[it.index].stem in done:
                made[it.index].unlink()
                made[it.index] = done[made[it.index].stem]
                counts[saver] += 1
        log(f"  LibreOffice 另存 {ext} {len(done)}/{len(chosen)} 份（{time.perf_counter() - t1:.0f} s）")
    counts["openpyxl"] = len(items) - counts["lo-xlsx"] - counts["lo-ods"]
    inbox = ws_dir / "收件箱"
    boxes = pack(items, made, inbox, ws, random.Random(n))
    shutil.rmtree(scratch, ignore_errors=True)
    mistakes = {m: sum(1 for it in items if it.mistake == m) for m in MISTAKES}
    forms = {f: sum(1 for it in items if it.form_id == f) for f, _ in FORM_SHARES}
    info = {"n": n, "invalid_share": invalid, "savers": counts, "forms": forms, "mistakes": mistakes,
            "invalid": sum(mistakes.values()), **boxes, "seconds": round(time.perf_counter() - t0)}
    (ws_dir / "corpus.json").write_text(json.dumps(info, ensure_ascii=False, indent=1), encoding="utf-8")
    stamp.write_text(key)
    return ws_dir


def _commented(data: bytes, note: bytes) -> bytes:
    """The same workbook (or zip) with a zip comment: other bytes, the same content."""
    buf = io.BytesIO(data)
    with zipfile.ZipFile(buf, "a") as z:
        z.comment = note
    return buf.getvalue()


def _copy_entry(src: Path, dst: Path, note: bytes) -> None:
    """One inbox entry, made distinct: a spreadsheet commented, a zip's or a mail's spreadsheets commented inside."""
    suffix = src.suffix.lower()
    if suffix in (".xlsx", ".ods"):
        dst.write_bytes(_commented(src.read_bytes(), note))
    elif suffix == ".zip":
        with zipfile.ZipFile(src) as z:
            infos = z.infolist()
            members = {(i.filename.encode("cp437").decode("gbk") if not i.flag_bits & 0x800 else i.filename):
                       _commented(z.read(i), note) for i in infos}
            gbk = any(not i.flag_bits & 0x800 and not i.filename.isascii() for i in infos)
        dst.write_bytes(gbk_zip(members) if gbk else utf8_zip(members))
    elif suffix == ".eml":
        msg = email.message_from_bytes(src.read_bytes(), policy=email.policy.default)
        out = EmailMessage(policy=email.policy.SMTP)
        for key in ("Subject", "From", "To", "Date"):
            out[key] = msg[key]
        out.set_content("请查收附件。")
        for part in msg.iter_attachments():
            main, sub = part.get_content_type().split("/")
            out.add_attachment(_commented(part.get_content(), note), maintype=main, subtype=sub,
                               filename=part.get_filename())
        dst.write_bytes(bytes(out))


def replicate(base: Path, copies: int, ws_dir: Path, log=print) -> dict:
    """`copies` of the base corpus's inbox in folders of their own, every file distinct (see the module's note)."""
    from tuanjian_xlsx.workspace import init_workspace

    init_workspace(ws_dir)
    shutil.copy(base / "tuanjian.toml", ws_dir / "tuanjian.toml")
    entries = sorted((base / "收件箱").iterdir())
    for c in range(copies):
        folder = ws_dir / "收件箱" / f"第{c + 1:02d}批"
        folder.mkdir()
        for src in entries:
            _copy_entry(src, folder / src.name, f"copy {c + 1}".encode())
        log(f"  第 {c + 1}/{copies} 份复本")
    info = json.loads((base / "corpus.json").read_text(encoding="utf-8"))
    scaled = {k: v * copies if isinstance(v, int) and k != "seconds" else v for k, v in info.items()}
    scaled |= {"savers": {k: v * copies for k, v in info["savers"].items()},
               "forms": {k: v * copies for k, v in info["forms"].items()},
               "mistakes": {k: v * copies for k, v in info["mistakes"].items()}, "copies": copies}
    return scaled


def describe(info: dict) -> str:
    """One line, in Chinese, saying what the corpus holds (for the README)."""
    n, s = info["n"], info["savers"]
    pct = lambda k: f"{100 * k / n:.0f}%"  # noqa: E731
    return (f"{n:,} 份：各单位下发表按标签填写，{pct(s['openpyxl'])} 由 openpyxl 保存、{pct(s['lo-xlsx'])} 经 LibreOffice "
            f"另存为 .xlsx、{pct(s['lo-ods'])} 另存为 .ods；{pct(info['in_zips'])} 装在 zip 里（半数 GBK 文件名）、"
            f"{pct(info['in_mails'])} 是另存邮件（.eml）的附件；{pct(info['invalid'])} 有错（数字格填了文字、必填项空着、"
            f"填了别的报送期的日期）" + (f"；为 {n // info['copies']:,} 份的 {info['copies']} 份复本，每份文件以 zip 注释区分"
                                     if info.get("copies", 1) > 1 else ""))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("n", type=int)
    ap.add_argument("--invalid", type=float, default=0.05)
    ap.add_argument("--copies", type=int, default=1, help="这么多份互不相同的复本（见说明）")
    args = ap.parse_args()
    (ROOT / ".bench").mkdir(exist_ok=True)
    ws_dir = corpus(args.n, args.invalid, copies=args.copies)
    info = json.loads((ws_dir / "corpus.json").read_text(encoding="utf-8"))
    print(ws_dir)
    print(describe(info))


if __name__ == "__main__":
    main()
