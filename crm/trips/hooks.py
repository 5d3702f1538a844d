"""The events the trips app announces (``caravan.hooks.Hook``), for the apps built on it."""
from caravan.hooks import Hook

# A refund was recorded (``payment_record(kind=refund)``): ``actor``, ``refund`` (the new Payment, its
# ``refund_of`` the payment paid back). Run inside the recording transaction: a receiver that raises
# (Stripe refused the refund of an online payment) undoes the record. crm.checkout listens.
payment_refunded = Hook("payment_refunded")
