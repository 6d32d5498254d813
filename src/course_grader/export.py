"""`course-grader export`: grades as CSV, from nbgrader's gradebook."""
import csv
import os


def _fmt(x):
    return "" if x is None else f"{float(x):g}"


def _write_csv(path, header, rows):
    """Write one header row then ``rows`` to ``path``; return ``path``."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def export(course, out_dir=None, per_part=False):
    """Write students.csv, assignments.csv and (per_part) parts.csv; return their paths."""
    out_dir = out_dir or os.path.join(course.root, "export")
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    with course.gradebook() as gb:
        assignments = sorted(gb.assignments, key=lambda a: (a.duedate is None, a.duedate, a.name))
        names = [a.name for a in assignments]
        students = sorted(s.id for s in gb.students)
        rows_a, rows_p, totals = [], [], {}
        for a in assignments:
            for sid in students:
                try:
                    sub = gb.find_submission(a.name, sid)
                except Exception:
                    rows_a.append([sid, a.name, "", _fmt(a.max_score), "missing", ""])
                    totals.setdefault(sid, {})[a.name] = None
                    continue
                rows_a.append([sid, a.name, _fmt(sub.score), _fmt(sub.max_score), "submitted",
                               sub.timestamp.isoformat() if sub.timestamp else ""])
                totals.setdefault(sid, {})[a.name] = sub.score
                if per_part:
                    for nb in sorted(sub.notebooks, key=lambda n: n.name):
                        for g in sorted(nb.grades, key=lambda g: g.name):
                            if g.cell_type != "code" or g.max_score is None:
                                continue
                            rows_p.append([sid, a.name, nb.name, g.name, _fmt(g.score), _fmt(g.max_score)])
        max_total = sum(a.max_score or 0 for a in assignments)
        paths.append(_write_csv(os.path.join(out_dir, "assignments.csv"),
                                ["student_id", "assignment", "score", "max_score", "status", "timestamp"],
                                rows_a))
        rows_s = []
        for sid in students:
            scores = [totals.get(sid, {}).get(n) for n in names]
            rows_s.append([sid, *(_fmt(s) if s is not None else "0" for s in scores),
                           _fmt(sum(s or 0 for s in scores)), _fmt(max_total)])
        paths.append(_write_csv(os.path.join(out_dir, "students.csv"),
                                ["student_id", *names, "total", "max_total"], rows_s))
        if per_part:
            paths.append(_write_csv(os.path.join(out_dir, "parts.csv"),
                                    ["student_id", "assignment", "notebook", "grade_id", "score", "max_score"],
                                    rows_p))
    return paths
