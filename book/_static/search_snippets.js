/* Search snippets from the page's own text (book/_ext/search_results.py explains why).
 *
 * Sphinx's searchtools.js (loaded before this deferred script) builds each result's snippet from the
 * text of the page's [role="main"] element, which in sphinx-book-theme starts with the download menu
 * (".md", ".ipynb", ".pdf"): snippets read "....pdf" followed by blank lines. This reads the article
 * body (article.bd-article) instead, with Sphinx's own removals (header links, scripts, styles). */
(function () {
  "use strict";
  if (typeof Search === "undefined" || typeof Search.htmlToText !== "function") return;
  const sphinxHtmlToText = Search.htmlToText;
  Search.htmlToText = (htmlString, anchor) => {
    const doc = new DOMParser().parseFromString(htmlString, "text/html");
    const article = doc.querySelector("article.bd-article");
    if (!article) return sphinxHtmlToText(htmlString, anchor);
    for (const query of [".headerlink", "script", "style", "mjx-assistive-mml"]) {
      article.querySelectorAll(query).forEach(e => e.remove());
    }
    const target = anchor ? article.querySelector(anchor) : null;
    return (target || article).textContent.replace(/\s+/g, " ");
  };
})();
