"""`course-grader report`: a class report (HTML + PNG plots) for one assignment."""
import collections
import html
import json
import os

from .course import CourseError


def collect_data(course, assignment):
    """Scores and per-part results from the gradebook; messages and flags from the grader's records."""
    data = {"scores": {}, "max_score": 0.0, "parts": collections.OrderedDict(), "failures": collections.Counter(),
            "flags": {}, "messages": {}, "misconceptions": collections.OrderedDict()}
    with course.gradebook() as gb:
        try:
            a = gb.find_assignment(assignment)
        except Exception:
            raise CourseError(f"assignment {assignment!r} is not in the gradebook") from None
        data["max_score"] = float(a.max_score or 0)
        for nb in sorted(a.notebooks, key=lambda n: n.name):
            for gc in nb.grade_cells:
                if gc.cell_type == "code":
                    data["parts"][gc.name] = {"max": float(gc.max_score), "passed": 0, "graded": 0}
        for sub in a.submissions:
            data["scores"][sub.student.id] = float(sub.score or 0)
            for nbs in sub.notebooks:
                for g in nbs.grades:
                    part = data["parts"].get(g.name)
                    if part is None:
                        continue
                    part["graded"] += 1
                    if g.score is not None and float(g.score) >= float(g.max_score):
                        part["passed"] += 1
    for student in data["scores"]:
        path = course.results_path(assignment, student)
        if not os.path.exists(path):
            continue
        with open(path, encoding="utf-8") as f:
            record = json.load(f)
        for nbname, res in record.items():
            for gid, t in res.get("tests", {}).items():
                if not t.get("passed") and t.get("misconception"):
                    data["misconceptions"].setdefault(t["misconception"], {}).setdefault(student, []).append(gid)
                if not t.get("passed"):
                    first = (t.get("message") or "failed").strip().splitlines()[0][:160]
                    data["failures"][(gid, first)] += 1
            if res.get("flags"):
                data["flags"].setdefault(student, []).extend(res["flags"])
            if res.get("messages"):
                data["messages"].setdefault(student, []).extend(res["messages"])
    return data


def misconception_section(data):
    """HTML: how many students each likely misconception (course_grader.misconceptions) was found in."""
    from .misconceptions import SENTENCES
    e = html.escape
    rows = "".join(
        f'<tr><td><code>{e(key)}</code></td><td class="count">{len(by_student)}</td>'
        f'<td>{e(", ".join(sorted({g for gids in by_student.values() for g in gids})))}</td>'
        f'<td>{e(SENTENCES.get(key, ""))}</td></tr>'
        for key, by_student in sorted(data["misconceptions"].items(), key=lambda kv: (-len(kv[1]), kv[0])))
    return ("<h2>Likely misconceptions</h2>\n<table id=\"misconceptions\"><tr><th>misconception</th>"
            "<th>students</th><th>graded parts</th><th>what the feedback says</th></tr>" + rows + "</table>")


def make_report(course, assignment, out_dir=None):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    data = collect_data(course, assignment)
    if not data["scores"]:
        raise CourseError(f"nothing graded for {assignment}: run `course-grader grade {assignment}` first")
    out_dir = out_dir or os.path.join(course.root, "reports", assignment)
    os.makedirs(out_dir, exist_ok=True)
    scores = np.array(sorted(data["scores"].values()))
    mx = data["max_score"] or max(scores.max(), 1.0)

    fig, ax = plt.subplots(figsize=(6, 3.5))
    bins = np.linspace(0, mx, min(int(mx), 20) + 1) if mx >= 1 else 10
    ax.hist(scores, bins=bins, color="#4472c4", edgecolor="white")
    ax.set_xlabel(f"score (out of {mx:g})")
    ax.set_ylabel("students")
    ax.set_title(f"{assignment}: score distribution (n = {len(scores)})")
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "score_histogram.png"), dpi=100)
    plt.close(fig)

    parts = list(data["parts"].items())
    rates = [p["passed"] / p["graded"] if p["graded"] else 0.0 for _, p in parts]
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(parts) + 1.5))
    ax.barh([name for name, _ in parts], [100 * r for r in rates], color="#70ad47")
    ax.set_xlim(0, 100)
    ax.set_xlabel("students passing (%)")
    ax.invert_yaxis()
    ax.set_title(f"{assignment}: pass rate per graded part")
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "pass_rate.png"), dpi=100)
    plt.close(fig)

    e = html.escape
    rows = "".join(f"<tr><td><code>{e(n)}</code></td><td>{p['max']:g}</td><td>{p['passed']}</td>"
                   f"<td>{p['graded']}</td><td>{100 * r:.0f}%</td></tr>" for (n, p), r in zip(parts, rates))
    fails = "".join(f"<tr><td>{c}</td><td><code>{e(g)}</code></td><td><pre>{e(m)}</pre></td></tr>"
                    for (g, m), c in data["failures"].most_common(15))
    flagged = "".join(f"<tr><td>{e(s)}</td><td>{e(str(data['scores'].get(s, 0)))}</td><td><ul>"
                      + "".join(f"<li><b>{e(k)}</b>: {e(d)}</li>" for k, d in fl) + "</ul></td></tr>"
                      for s, fl in sorted(data["flags"].items()))
    scores_rows = "".join(f"<tr><td>{e(s)}</td><td>{v:g}</td></tr>" for s, v in sorted(data["scores"].items()))
    page = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Class report: {e(assignment)}</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.2em .5em;text-align:left;vertical-align:top}}pre{{margin:0;white-space:pre-wrap}}</style>
</head><body>
<h1>Class report: {e(assignment)}</h1>
<p id="summary">Students graded: <b>{len(scores)}</b>; maximum score {mx:g}; mean <b>{scores.mean():.2f}</b>;
median {np.median(scores):.2f}; full marks: {int((scores >= mx).sum())}; flagged: <b>{len(data['flags'])}</b>.</p>
<h2>Score histogram</h2><img src="score_histogram.png" alt="score histogram">
<h2>Pass rate per graded part</h2><img src="pass_rate.png" alt="pass rate per graded part">
<table id="parts"><tr><th>graded part</th><th>points</th><th>passed</th><th>graded</th><th>pass rate</th></tr>{rows}</table>
<h2>Most frequent failure messages</h2>
<table id="failures"><tr><th>count</th><th>graded part</th><th>message</th></tr>{fails}</table>
{misconception_section(data)}
<h2>Flagged submissions</h2>
<table id="flagged"><tr><th>student</th><th>score</th><th>flags (timeouts, crashed kernels, tampering, cnnmath)</th></tr>{flagged}</table>
<h2>Scores</h2><table id="scores"><tr><th>student</th><th>score</th></tr>{scores_rows}</table>
</body></html>
"""
    path = os.path.join(out_dir, "index.html")
    with open(path, "w", encoding="utf-8") as f:
        f.write(page)
    return path, data
