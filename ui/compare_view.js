// Compare view: a grid of panes that share one zoom and one centre (synced zoom/pan).
// Runs as gr.HTML's js_on_load: `element`, `props`, `trigger` and `watch` are given.
// props.value is JSON from ui/compare.py: {base: [w, h], panes: [{label, url, ...}]}.
// Every image is drawn at the size of the first output (base), so each pane shows the
// same relative region; pixels are not smoothed (image-rendering: pixelated).
(() => {
  const view = { magnification: 0, cx: 0.5, cy: 0.5, paneWidth: 320 };
  const MAX_MAGNIFICATION = 32;
  let data = { base: [1, 1], panes: [] };

  const parse = () => {
    try {
      return JSON.parse(props.value || "{}");
    } catch (error) {
      return {};
    }
  };
  const base = () => data.base || [1, 1];
  const paneHeight = () => Math.round((view.paneWidth * base()[1]) / base()[0]);
  const fit = () => view.paneWidth / base()[0];

  function clampView() {
    const lowest = fit();
    view.magnification = Math.min(Math.max(view.magnification || lowest, lowest), MAX_MAGNIFICATION);
    const halfW = view.paneWidth / (2 * view.magnification * base()[0]);
    const halfH = paneHeight() / (2 * view.magnification * base()[1]);
    view.cx = halfW >= 0.5 ? 0.5 : Math.min(Math.max(view.cx, halfW), 1 - halfW);
    view.cy = halfH >= 0.5 ? 0.5 : Math.min(Math.max(view.cy, halfH), 1 - halfH);
  }

  function place() {
    clampView();
    const [w, h] = base();
    const m = view.magnification;
    element.querySelectorAll(".cmp-frame").forEach((frame) => {
      frame.style.width = `${view.paneWidth}px`;
      frame.style.height = `${paneHeight()}px`;
      const img = frame.querySelector("img");
      if (!img) return;
      img.style.width = `${w * m}px`;
      img.style.height = `${h * m}px`;
      img.style.left = `${view.paneWidth / 2 - view.cx * w * m}px`;
      img.style.top = `${paneHeight() / 2 - view.cy * h * m}px`;
    });
    const shown = element.querySelector(".cmp-zoom-value");
    if (shown) shown.textContent = `${(m * (window.devicePixelRatio || 1)).toFixed(2)}× (screen px per image px)`;
  }

  function zoomAt(factor, fx = 0.5, fy = 0.5) {
    // keep the point under the cursor (fx, fy: fractions of the pane) where it is
    const [w, h] = base();
    const before = view.magnification;
    const px = view.cx + (fx - 0.5) * view.paneWidth / (before * w);
    const py = view.cy + (fy - 0.5) * paneHeight() / (before * h);
    view.magnification = before * factor;
    clampView();
    const m = view.magnification;
    view.cx = px - (fx - 0.5) * view.paneWidth / (m * w);
    view.cy = py - (fy - 0.5) * paneHeight() / (m * h);
    place();
  }

  function scoreLines(pane) {
    const list = document.createElement("div");
    list.className = "cmp-scores";
    for (const [name, text] of pane.lines || []) {
      const row = document.createElement("div");
      row.textContent = `${name}: ${text}`;
      if ((pane.best || []).includes(name)) {
        row.classList.add("cmp-best");
        row.textContent += " ★";
      }
      list.appendChild(row);
    }
    return list;
  }

  function paneElement(pane) {
    const figure = document.createElement("figure");
    figure.className = "cmp-pane";
    const frame = document.createElement("div");
    frame.className = "cmp-frame";
    if (pane.url) {
      const img = document.createElement("img");
      img.src = pane.url;
      img.alt = pane.label;
      img.draggable = false;
      frame.appendChild(img);
    } else {
      frame.classList.add("cmp-failed");
      frame.textContent = pane.error || "no output";
    }
    const caption = document.createElement("figcaption");
    const title = document.createElement("strong");
    title.textContent = pane.label;
    caption.appendChild(title);
    caption.appendChild(scoreLines(pane));
    figure.appendChild(frame);
    figure.appendChild(caption);
    return figure;
  }

  function visibleRegion() {
    // the region every pane shows, in pixels of the first output
    const [w, h] = base();
    const m = view.magnification;
    const width = Math.min(w, Math.round(view.paneWidth / m));
    const height = Math.min(h, Math.round(paneHeight() / m));
    const x = Math.min(Math.max(Math.round(view.cx * w - width / 2), 0), w - width);
    const y = Math.min(Math.max(Math.round(view.cy * h - height / 2), 0), h - height);
    return { x, y, width, height };
  }

  function toolbar() {
    const bar = document.createElement("div");
    bar.className = "cmp-toolbar";
    const button = (text, action, title) => {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = text;
      b.title = title || text;
      b.addEventListener("click", action);
      bar.appendChild(b);
    };
    button("Fit", () => { view.magnification = fit(); place(); });
    for (const ratio of [1, 2, 4, 8]) {
      button(`${ratio}:1`, () => {
        zoomAt(ratio / (window.devicePixelRatio || 1) / view.magnification);
      }, `one image pixel = ${ratio} screen pixel(s)`);
    }
    button("−", () => zoomAt(1 / 1.5));
    button("+", () => zoomAt(1.5));
    const size = document.createElement("select");
    for (const width of [200, 320, 480, 640]) {
      const option = document.createElement("option");
      option.value = String(width);
      option.textContent = `panes ${width} px`;
      option.selected = width === view.paneWidth;
      size.appendChild(option);
    }
    size.addEventListener("change", () => { view.paneWidth = Number(size.value); place(); });
    bar.appendChild(size);
    button("Use this view for the crop strip", () => trigger("region", visibleRegion()));
    const shown = document.createElement("span");
    shown.className = "cmp-zoom-value";
    bar.appendChild(shown);
    return bar;
  }

  function attachGestures(grid) {
    let drag = null;
    grid.addEventListener("wheel", (event) => {
      const frame = event.target.closest(".cmp-frame");
      if (!frame) return;
      event.preventDefault();
      const box = frame.getBoundingClientRect();
      const factor = event.deltaY < 0 ? 1.25 : 1 / 1.25;
      zoomAt(factor, (event.clientX - box.left) / box.width, (event.clientY - box.top) / box.height);
    }, { passive: false });
    grid.addEventListener("pointerdown", (event) => {
      if (!event.target.closest(".cmp-frame")) return;
      drag = { x: event.clientX, y: event.clientY };
      grid.setPointerCapture(event.pointerId);
    });
    grid.addEventListener("pointermove", (event) => {
      if (!drag) return;
      const [w, h] = base();
      view.cx -= (event.clientX - drag.x) / (view.magnification * w);
      view.cy -= (event.clientY - drag.y) / (view.magnification * h);
      drag = { x: event.clientX, y: event.clientY };
      place();
    });
    const stop = () => { drag = null; };
    grid.addEventListener("pointerup", stop);
    grid.addEventListener("pointercancel", stop);
  }

  function render() {
    const fresh = parse();
    const sameBase = JSON.stringify(fresh.base) === JSON.stringify(data.base);
    data = { base: fresh.base || [1, 1], panes: fresh.panes || [] };
    if (!sameBase) Object.assign(view, { magnification: 0, cx: 0.5, cy: 0.5 });
    element.replaceChildren();
    if (!data.panes.length) {
      const empty = document.createElement("p");
      empty.className = "cmp-empty";
      empty.textContent = fresh.message || "Run a comparison to see the outputs side by side.";
      element.appendChild(empty);
      return;
    }
    element.appendChild(toolbar());
    const grid = document.createElement("div");
    grid.className = "cmp-grid";
    data.panes.forEach((pane) => grid.appendChild(paneElement(pane)));
    element.appendChild(grid);
    attachGestures(grid);
    place();
  }

  watch("value", render);
  render();
})();
