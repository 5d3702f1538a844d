// The Billing page's card form: Stripe.js (or localstripe's stand-in) confirms a SetupIntent in the
// browser; the form then posts only the PaymentMethod id. The card number never reaches Caravan.
(function () {
  const config = document.getElementById("billing-js");
  const form = document.querySelector("[data-card-form]");
  if (!config || !form || typeof Stripe === "undefined") return;
  // Stripe.js writes its own messages in the page's language ("zh" for zh-Hans).
  const stripe = Stripe(config.dataset.key, {locale: (config.dataset.locale || "auto").split("-")[0]});
  const reasons = JSON.parse(document.getElementById("card-reasons").textContent);
  // The reason in the page's language: ours for a known code; Stripe's message for a card or input error
  // (Stripe.js localises those); a bare request error ("Bad request") names what to check.
  const reasonOf = (error) => {
    if (error.decline_code && reasons[error.decline_code]) return reasons[error.decline_code];
    if (error.code && reasons[error.code]) return reasons[error.code];
    if ((error.type === "card_error" || error.type === "validation_error") && error.message) return error.message;
    return reasons[""] || config.dataset.declined;
  };
  const card = stripe.elements().create("card");
  card.mount("#card-element");
  const errors = document.getElementById("card-errors");
  let confirmed = false;
  form.addEventListener("submit", async (event) => {
    if (confirmed) return;
    event.preventDefault();
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    errors.textContent = "";
    const result = await stripe.confirmCardSetup(config.dataset.secret, {payment_method: {card: card}});
    if (result.error) {
      errors.textContent = reasonOf(result.error || {});
      button.disabled = false;
      return;
    }
    form.querySelector("input[name=payment_method]").value = result.setupIntent.payment_method;
    confirmed = true;
    form.submit();
  });
})();
