// Small page behaviours, declared in the markup with data- attributes instead of inline handlers
// (the Content-Security-Policy allows no onclick=, javascript: URLs or eval; docs/deploy.md).
// Listeners sit on the document, so fragments htmx swaps in behave the same.
//   <button data-print>                 prints the page
//   <select data-autosubmit>            submits its form when changed
//   <form data-confirm="question">      asks before submitting
//   <input type=checkbox data-select-all="ids">  ticks every input[name=ids] of its form
//   <input data-select-on-click>        selects its text when clicked
//   <a href="/" data-back>              goes back in history (the href when there is none)
//   <form data-submit-shortcut>         Ctrl/Cmd+Enter submits it
//   <div data-scroll-cue><div>…</div></div>  data-more="left right" on the frame while its first child
//                                        can scroll further that way (the CSS draws a fade on that side)
(function () {
  "use strict";

  document.addEventListener("click", function (event) {
    const target = event.target;
    if (!(target instanceof Element)) return;
    if (target.closest("[data-print]")) {
      window.print();
      return;
    }
    const back = target.closest("a[data-back]");
    if (back && window.history.length > 1) {
      event.preventDefault();
      window.history.back();
      return;
    }
    if (target.matches("input[data-select-all]") && target.form) {
      for (const box of target.form.querySelectorAll("input[name='" + target.dataset.selectAll + "']")) {
        box.checked = target.checked;
      }
      return;
    }
    if (target.matches("input[data-select-on-click]")) target.select();
  });

  document.addEventListener("change", function (event) {
    const target = event.target;
    if (target instanceof HTMLSelectElement && target.hasAttribute("data-autosubmit") && target.form) {
      target.form.submit();
    }
  });

  document.addEventListener("submit", function (event) {
    const form = event.target;
    if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Enter" || !(event.ctrlKey || event.metaKey)) return;
    const form = event.target instanceof Element ? event.target.closest("form[data-submit-shortcut]") : null;
    if (form) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  function scrollCue(frame) {
    const box = frame.firstElementChild;
    if (!box) return;
    const more = [];
    if (box.scrollLeft > 1) more.push("left");
    if (box.scrollLeft + box.clientWidth < box.scrollWidth - 1) more.push("right");
    frame.dataset.more = more.join(" ");
  }
  function scrollCues() {
    for (const frame of document.querySelectorAll("[data-scroll-cue]")) scrollCue(frame);
  }
  document.addEventListener("scroll", function (event) {  // scroll does not bubble: caught on the way down
    const frame = event.target instanceof Element ? event.target.parentElement : null;
    if (frame && frame.hasAttribute("data-scroll-cue")) scrollCue(frame);
  }, true);
  window.addEventListener("resize", scrollCues);
  document.addEventListener("htmx:afterSettle", scrollCues);
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", scrollCues);
  else scrollCues();
})();
