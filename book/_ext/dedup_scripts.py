"""Sphinx extension: drop duplicate <script> entries from every HTML page.

With Jupyter Book 1.0.4 and Sphinx 7.4, sphinx-thebe and sphinx-togglebutton register their inline
configuration scripts twice, so each page declares `const THEBE_JS_URL` twice and the browser reports
"Identifier 'THEBE_JS_URL' has already been declared" (caught by tests/test_website.py). Sphinx
deduplicates script *files* by name but not inline bodies; this keeps the first of identical entries.
"""


def _script_key(js):
    attributes = getattr(js, "attributes", {}) or {}
    return (str(getattr(js, "filename", js) or ""), tuple(sorted((k, str(v)) for k, v in attributes.items())))


def dedup_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for js in scripts:
        key = _script_key(js)
        if key not in seen:
            seen.add(key)
            unique.append(js)
    scripts[:] = unique


def setup(app):
    app.connect("html-page-context", dedup_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
