// The accessibility check of tests/test_browser.py, run in each page: every problem, as text.
// Contrast per WCAG 2.x: 4.5:1, or 3:1 for large text (24 px, or 18.66 px bold), against the
// first opaque background up the tree; SVG text by its fill.
() => {
  const problems = [];
  const lum = ([r, g, b]) => {
    const c = [r, g, b].map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  };
  const rgba = s => { const m = s.match(/[\d.]+/g) || []; return m.map(Number).concat([1]).slice(0, 4); };
  const background = el => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgba(getComputedStyle(e).backgroundColor);
      if (c[3] > 0.99) return c;
    }
    return [255, 255, 255, 1];
  };
  if (!document.documentElement.lang) problems.push('no lang attribute');
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const seen = new Set();
  while (walker.nextNode()) {
    const node = walker.currentNode;
    const el = node.parentElement;
    if (!node.textContent.trim() || seen.has(el)) continue;
    seen.add(el);
    const style = getComputedStyle(el);
    const box = el.getBoundingClientRect();
    if (style.visibility === 'hidden' || box.width === 0 || box.right < 0) continue;
    const inSvg = el.closest('svg') !== null;
    const fg = rgba(inSvg ? style.fill : style.color);
    const bg = background(inSvg ? el.closest('svg') : el);
    const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
    const ratio = (a + 0.05) / (b + 0.05);
    const size = parseFloat(style.fontSize), bold = parseInt(style.fontWeight) >= 700;
    const needed = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    if (ratio < needed) problems.push(`contrast ${ratio.toFixed(2)} < ${needed}: "${node.textContent.trim().slice(0, 40)}"`);
  }
  const headings = [...document.querySelectorAll('h1, h2, h3, h4, h5, h6')].map(h => +h.tagName[1]);
  if (headings.filter(h => h === 1).length !== 1) problems.push('not exactly one h1');
  headings.forEach((h, i) => { if (i && h > headings[i - 1] + 1) problems.push(`heading h${headings[i - 1]} then h${h}`); });
  for (const input of document.querySelectorAll('input:not([type=hidden]), select, textarea')) {
    const named = input.labels?.length || input.getAttribute('aria-label') || input.getAttribute('aria-labelledby');
    if (!named) problems.push(`input without a label: ${input.outerHTML.slice(0, 60)}`);
  }
  for (const img of document.querySelectorAll('img')) if (!img.hasAttribute('alt')) problems.push('img without alt');
  for (const img of document.querySelectorAll('img')) if (!img.complete || img.naturalWidth === 0) problems.push(`broken image: ${img.src}`);
  for (const svg of document.querySelectorAll('svg')) {
    if (svg.getAttribute('role') !== 'img' || !(svg.querySelector('title') || svg.getAttribute('aria-label'))) problems.push('svg without a text alternative');
  }
  for (const a of document.querySelectorAll('a')) if (!a.textContent.trim() && !a.getAttribute('aria-label')) problems.push('link without text');
  return problems;
}
