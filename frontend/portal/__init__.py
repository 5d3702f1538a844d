"""The customer portal's pages (issue 21): the third site Caravan serves, after the agency pages
(``frontend``) and the operators' console. It lives on each agency's own host under ``/portal/``, with its
own session cookie (``session.py``) and its own sealed base view (``base.PortalPage``): a customer is never a
staff ``User``, and every query a portal page makes starts from what the signed-in customer may see."""
