// The pipeline board: move a card to another column by dragging it, or with the keyboard.
// One path for every move: a drop fills in the card's own move menu (the form and endpoint the menu posts)
// and submits it, so the move service decides, and its refusal comes back as the page's message.
// The columns a card may go to are exactly the options of its move menu (crm.pipeline.services.move_targets);
// the others are marked while a card is carried and refuse the drop.
//
// Keyboard (the hint on the page says so): focus a card, Space or Enter picks it up, Left/Right choose a
// column (announced in the board's status line), Enter or Space drops, Escape cancels.
// Touch screens (coarse pointers) keep the move menu: cards are not made draggable there.
//
// Markup: <div data-board-dnd data-msg-*="…">, columns [data-stage][data-name], cards [data-opportunity]
// [data-title] holding form.board-move, and [data-board-status] for the announcements.
(function () {
  "use strict";

  let board = null;
  let status = null;
  let carried = null;  // {card, columns, index (keyboard), over (pointer)}

  function say(name, values) {
    let text = board.dataset[name] || "";
    for (const key of Object.keys(values || {})) text = text.split("%(" + key + ")s").join(values[key]);
    status.textContent = text;
  }

  function columns() {
    return Array.from(board.querySelectorAll(".board-column[data-stage]"));
  }

  function columnOf(card) {
    return card.closest(".board-column");
  }

  function allowed(card) {
    const menu = card.querySelector("form.board-move select[name=stage]");
    if (!menu) return new Set();
    return new Set(Array.from(menu.options).map(function (o) { return o.value; }).filter(Boolean));
  }

  function pickUp(card) {
    const targets = allowed(card);
    const home = columnOf(card);
    carried = {card: card, targets: targets, home: home, index: columns().indexOf(home), over: null, dropped: false};
    card.classList.add("board-carried");
    card.setAttribute("aria-grabbed", "true");
    for (const column of columns()) {
      if (column === home) continue;
      column.classList.add(targets.has(column.dataset.stage) ? "board-allowed" : "board-refused");
    }
  }

  function putDown() {
    if (!carried) return;
    carried.card.classList.remove("board-carried");
    carried.card.removeAttribute("aria-grabbed");
    for (const column of columns()) column.classList.remove("board-allowed", "board-refused", "board-over");
    carried = null;
  }

  function refusal(card, column) {
    const from = columnOf(card);
    say("msgRefused", {from: from.dataset.name, to: column.dataset.name, title: card.dataset.title});
  }

  // The drop: the card's move menu set to the column, then its form submitted — or, for a lost column,
  // the "why lost?" menu shown and focused, since the service needs a reason.
  function drop(card, column) {
    const form = card.querySelector("form.board-move");
    if (!form || !allowed(card).has(column.dataset.stage)) {
      refusal(card, column);
      return;
    }
    form.elements.stage.value = column.dataset.stage;
    if (column.dataset.kind === "lost" && form.elements.lost_reason && !form.elements.lost_reason.value) {
      form.elements.lost_reason.focus();
      say("msgLost", {title: card.dataset.title, to: column.dataset.name});
      return;
    }
    say("msgMoving", {title: card.dataset.title, to: column.dataset.name});
    form.requestSubmit();
  }

  // --- the pointer: native HTML5 drag and drop ------------------------------------------------------

  function onDragStart(event) {
    const card = event.target instanceof Element ? event.target.closest(".board-card[draggable=true]") : null;
    if (!card || !board.contains(card)) return;
    if (event.target.closest("select, button, input")) { event.preventDefault(); return; }
    event.dataTransfer.setData("text/plain", card.dataset.opportunity);
    event.dataTransfer.effectAllowed = "move";
    pickUp(card);
  }

  function onDragOver(event) {
    if (!carried) return;
    const column = event.target instanceof Element ? event.target.closest(".board-column") : null;
    if (!column || !board.contains(column)) return;
    carried.over = column;
    if (column !== carried.home && carried.targets.has(column.dataset.stage)) {
      event.preventDefault();  // only an allowed column accepts the drop
      event.dataTransfer.dropEffect = "move";
      for (const other of columns()) other.classList.toggle("board-over", other === column);
    } else {
      for (const other of columns()) other.classList.remove("board-over");
    }
  }

  function onDrop(event) {
    if (!carried) return;
    const column = event.target instanceof Element ? event.target.closest(".board-column") : null;
    if (!column) return;
    event.preventDefault();
    const card = carried.card;
    carried.dropped = true;
    putDown();
    drop(card, column);
  }

  function onDragEnd() {
    if (!carried) return;
    const card = carried.card;
    const over = carried.over;
    const dropped = carried.dropped;
    putDown();
    if (!dropped && over && over !== columnOf(card)) refusal(card, over);  // let go over a refused column
  }

  // --- the keyboard ---------------------------------------------------------------------------------

  function point(index) {
    const all = columns();
    carried.index = Math.max(0, Math.min(all.length - 1, index));
    const column = all[carried.index];
    for (const other of all) other.classList.toggle("board-over", other === column);
    column.scrollIntoView({block: "nearest", inline: "nearest"});
    if (column === carried.home) say("msgHome", {to: column.dataset.name});
    else if (carried.targets.has(column.dataset.stage)) say("msgOver", {to: column.dataset.name});
    else refusal(carried.card, column);
  }

  function onKeyDown(event) {
    const card = event.target instanceof Element && event.target.matches(".board-card") ? event.target : null;
    if (!card || !board.contains(card)) return;
    const key = event.key;
    if (!carried || carried.card !== card) {
      if (key === " " || key === "Enter") {
        event.preventDefault();
        putDown();
        pickUp(card);
        say("msgPicked", {title: card.dataset.title, from: carried.home.dataset.name});
      }
      return;
    }
    if (key === "ArrowRight" || key === "ArrowLeft") {
      event.preventDefault();
      point(carried.index + (key === "ArrowRight" ? 1 : -1));
    } else if (key === "Enter" || key === " ") {
      event.preventDefault();
      const column = columns()[carried.index];
      putDown();
      if (column === columnOf(card)) say("msgCancelled", {title: card.dataset.title});
      else drop(card, column);
    } else if (key === "Escape") {
      event.preventDefault();
      putDown();
      say("msgCancelled", {title: card.dataset.title});
    }
  }

  function onFocusOut(event) {
    if (carried && event.target === carried.card && !carried.card.contains(event.relatedTarget)) {
      if (event.relatedTarget) putDown();  // focus went elsewhere on the page: the carry ends
    }
  }

  function start() {
    board = document.querySelector("[data-board-dnd]");
    if (!board) return;
    status = board.querySelector("[data-board-status]");
    const touch = window.matchMedia && window.matchMedia("(pointer: coarse)").matches;
    for (const card of board.querySelectorAll(".board-card[data-opportunity]")) {
      if (!card.querySelector("form.board-move")) continue;  // won: nowhere to go
      card.tabIndex = 0;
      if (!touch) card.draggable = true;
    }
    board.addEventListener("dragstart", onDragStart);
    board.addEventListener("dragover", onDragOver);
    board.addEventListener("drop", onDrop);
    board.addEventListener("dragend", onDragEnd);
    board.addEventListener("keydown", onKeyDown);
    board.addEventListener("focusout", onFocusOut);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
