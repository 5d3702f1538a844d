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
//   <button data-menu-toggle aria-controls="id">  the phone menu: toggles aria-expanded and .menu-open on its
//                                        .topbar; Escape closes it and gives the button the focus back
//   <table class="table">                a table wider than its box (long unbroken text at any width) gets
//                                        .table-scrolls: it scrolls sideways inside itself, not the page
//   <details class="navgroup|usermenu">  header menus: opening one closes the others; a click outside or
//                                        Escape closes them (Escape returns the focus to their summary)
(function () {
  "use strict";

  const HEADER_MENUS = "details.navgroup, details.usermenu";

  function setMenu(button, open) {
    button.setAttribute("aria-expanded", open ? "true" : "false");
    const bar = button.closest(".topbar");
    if (bar) bar.classList.toggle("menu-open", open);
  }

  function closeHeaderMenus(except) {
    for (const menu of document.querySelectorAll(HEADER_MENUS + "[open]")) {
      if (menu !== except && !(except && menu.contains(except))) menu.removeAttribute("open");
    }
  }

  document.addEventListener("toggle", function (event) {  // toggle does not bubble: caught on the way down
    const menu = event.target;
    if (menu instanceof HTMLDetailsElement && menu.open && menu.matches(HEADER_MENUS)) closeHeaderMenus(menu);
  }, true);

  document.addEventListener("click", function (event) {
    const target = event.target;
    if (!(target instanceof Element)) return;
    if (!target.closest(HEADER_MENUS)) closeHeaderMenus(null);
    const toggle = target.closest("[data-menu-toggle]");
    if (toggle) {
      setMenu(toggle, toggle.getAttribute("aria-expanded") !== "true");
      return;
    }
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
    if (event.key !== "Escape") return;
    const open = event.target instanceof Element ? event.target.closest(HEADER_MENUS) : null;
    if (open && open.open) {
      open.removeAttribute("open");
      open.querySelector("summary").focus();
      return;
    }
    const toggle = document.querySelector("[data-menu-toggle][aria-expanded=true]");
    if (toggle) {
      setMenu(toggle, false);
      toggle.focus();
    }
  });

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
  function fitTables() {
    for (const table of document.querySelectorAll("table.table")) {
      table.classList.remove("table-scrolls");
      const box = table.parentElement;
      if (!box) continue;
      const style = getComputedStyle(box);
      const room = box.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
      if (table.offsetWidth > room + 1) table.classList.add("table-scrolls");
    }
  }
  function layout() {
    scrollCues();
    fitTables();
  }
  window.addEventListener("resize", layout);
  document.addEventListener("htmx:afterSettle", layout);
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", layout);
  else layout();
})();
