// The Billing page's card form: Stripe.js (or localstripe's stand-in) confirms a SetupIntent in the
// browser; the form then posts only the PaymentMethod id. The card number never reaches Caravan.
(function () {
  const config = document.getElementById("billing-js");
  const form = document.querySelector("[data-card-form]");
  if (!config || !form || typeof Stripe === "undefined") return;
  const stripe = Stripe(config.dataset.key);
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
      errors.textContent = result.error.message || config.dataset.declined;
      button.disabled = false;
      return;
    }
    form.querySelector("input[name=payment_method]").value = result.setupIntent.payment_method;
    confirmed = true;
    form.submit();
  });
})();
