// The portal's pay page (crm.checkout): Stripe.js (or localstripe's stand-in) turns the card into a
// PaymentMethod in the browser and the form posts only its id; the server confirms the payment for the
// amount it set. After a 3-D Secure request the browser completes it, then opens the payment page. The
// payment page polls until the payment is recorded.
(function () {
  const poll = document.querySelector("[data-poll]");
  if (poll) {
    const tick = async () => {
      try {
        const response = await fetch(poll.dataset.poll, {credentials: "same-origin", headers: {"Accept": "application/json"}});
        const body = await response.json();
        if (body.recorded) { window.location.reload(); return; }
      } catch (error) { /* try again */ }
      window.setTimeout(tick, 2000);
    };
    window.setTimeout(tick, 2000);
  }
  const config = document.getElementById("portal-pay");
  if (!config || typeof Stripe === "undefined") return;
  const stripe = Stripe(config.dataset.key, {locale: (config.dataset.locale || "auto").split("-")[0]});
  if (config.dataset.actionSecret) {
    stripe.confirmCardPayment(config.dataset.actionSecret).then(function () { window.location = config.dataset.done; });
    return;
  }
  const form = document.querySelector("[data-pay-form]");
  if (!form) return;
  const card = stripe.elements().create("card");
  card.mount("#card-element");
  const errors = document.getElementById("card-errors");
  let ready = false;
  form.addEventListener("submit", async (event) => {
    if (ready) return;
    event.preventDefault();
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    errors.textContent = "";
    const result = await stripe.confirmCardSetup(config.dataset.secret, {payment_method: {card: card}});
    if (result.error) {
      errors.textContent = (result.error.type === "card_error" || result.error.type === "validation_error") && result.error.message
        ? result.error.message : config.dataset.failed;
      button.disabled = false;
      return;
    }
    form.querySelector("input[name=payment_method]").value = result.setupIntent.payment_method;
    ready = true;
    form.submit();
  });
})();
