// Measures one rendered book page (run by scripts/check_site.py through DevTools).
// Returns a JSON-able object; check_site.py decides what fails.
(() => {
  const col = document.querySelector("article.bd-article") || document.body;
  const cs = getComputedStyle(col);
  const cr = col.getBoundingClientRect();
  const left = cr.left + parseFloat(cs.paddingLeft);
  const right = cr.right - parseFloat(cs.paddingRight);
  const tex = new Map();
  try {
    for (const m of MathJax.startup.document.math) tex.set(m.typesetRoot, m.math);
  } catch (e) { /* page without MathJax */ }
  const texOf = (el) => {
    const c = el.closest("mjx-container");
    return ((c && tex.get(c)) || "").replace(/\s+/g, " ").trim().slice(0, 70);
  };
  const excess = (el, box) => {
    const r = el.getBoundingClientRect();
    const b = box.getBoundingClientRect();
    const lo = Math.max(left, b.left), hi = Math.min(right, b.right);
    return Math.round(Math.max(r.right - hi, lo - r.left, el.scrollWidth - box.clientWidth));
  };
  const wideEquations = [];
  for (const c of col.querySelectorAll('mjx-container[display="true"]')) {
    const over = excess(c.querySelector("mjx-math") || c, c);
    if (over > 1) {
      const div = c.closest("div.math");
      const eqno = div && div.querySelector(".eqno");
      wideEquations.push({label: (div && div.id) || "", number: eqno ? eqno.textContent.replace("#", "").trim() : "",
                          px: over, tex: texOf(c)});
    }
  }
  const wideTables = [];
  for (const t of col.querySelectorAll("table")) {
    const over = excess(t, t.parentElement);
    if (over > 1) {
      const head = (t.querySelector("tr") || t).innerText.replace(/\s+/g, " ").slice(0, 60);
      wideTables.push({px: over, head: head});
    }
  }
  let crampedCells = 0;
  for (const td of col.querySelectorAll("td, th")) {
    const lh = parseFloat(getComputedStyle(td).lineHeight) || 24;
    if (td.innerText.trim().length < 40 && td.getBoundingClientRect().height > 2.6 * lh) {
      crampedCells += 1;
    }
  }
  const mathErrors = [...document.querySelectorAll("mjx-merror")].map(
    (e) => ({message: e.getAttribute("data-mjx-error") || e.textContent, tex: texOf(e)}));
  const skip = new Set(["PRE", "CODE", "SCRIPT", "STYLE", "TEXTAREA", "NOSCRIPT", "MJX-CONTAINER"]);
  const rawTex = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    let p = n.parentElement, hidden = false;
    for (let a = p; a; a = a.parentElement) if (skip.has(a.tagName)) { hidden = true; break; }
    if (hidden || !p.getClientRects().length) continue;
    const m = n.textContent.match(/\$\$|\\[a-zA-Z]{2,}|\\[([]|Math input error/);
    if (m) rawTex.push(n.textContent.slice(Math.max(0, m.index - 20), m.index + 50).trim());
  }
  const words = "(?:Exercise|Figure|Table|Equation|Eq\\.|Fig\\.|Section|Chapter)";
  const dbl = new RegExp(`\\b${words}\\s+${words}\\s*\\(?\\d`, "g");
  const doubled = [...new Set(col.innerText.match(dbl) || [])];
  const scrolling = {input: 0, output: 0, other: 0, widest: 0};
  for (const pre of col.querySelectorAll("pre")) {
    if (pre.scrollWidth > pre.clientWidth + 1) {
      const kind = pre.closest(".cell_input") ? "input" : pre.closest(".cell_output") ? "output"
        : "other";
      scrolling[kind] += 1;
      scrolling.widest = Math.max(scrolling.widest,
        ...pre.innerText.split("\n").map((line) => line.length));
    }
  }
  const numbers = [...col.querySelectorAll(".eqno, .caption-number")].map(
    (e) => e.textContent.replace("#", "").trim());
  const bareImages = [...col.querySelectorAll(".cell_output img")].filter(
    (img) => !img.closest("figure")).length;
  const refs = [];
  for (const el of document.querySelectorAll("a[href], img[src], link[href], script[src], source[src], iframe[src]")) {
    const raw = el.getAttribute("href") || el.getAttribute("src");
    refs.push({tag: el.tagName.toLowerCase(), raw: raw, url: el.href || el.src});
  }
  return {
    column: Math.round(right - left), typeset: document.querySelectorAll("mjx-container").length,
    wideEquations, wideTables, crampedCells, mathErrors, doubled, numbers, bareImages, rawTex: rawTex.slice(0, 20), scrolling,
    refs, ids: [...document.querySelectorAll("[id], a[name]")].map((e) => e.id || e.name),
  };
})()
