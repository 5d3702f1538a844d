"""Search supplier inventory from a trip (R-INT-2): flights between two places on a date, hotels in a
city for dates, each result judged against the chosen traveler's travel policy; picking one adds it
to the itinerary. Searching and adding go through ``integrations.search``."""
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views import View

from accounts.roles import Cap
from caravan.tenancy import require_agency
from crm.policies import messages as policy_messages
from crm.trips import selectors
from integrations import reference, search

from .trips import TripPage, _trip

FLIGHT_FIELDS = (*search.FLIGHT_QUERY, "sort")
HOTEL_FIELDS = (*search.HOTEL_QUERY, "sort")


class TripInventoryView(TripPage, View):
    required_cap = Cap.PIPELINE_WORK
    template = "frontend/trips/inventory.html"

    def _context(self, request, trip, data):
        kind = data.get("kind") if data.get("kind") in ("flight", "hotel") else "hotel"
        travelers = selectors.trip_travelers(trip)
        traveler = next((t.customer for t in travelers if str(t.customer_id) == data.get("traveler", "")), None)
        if traveler is None and len(travelers) == 1:
            traveler = travelers[0].customer
        query = {name: data.get(name, "") for name in (FLIGHT_FIELDS if kind == "flight" else HOTEL_FIELDS)}
        if kind == "hotel":
            query.setdefault("check_in", "")
            query["check_in"] = query["check_in"] or (trip.depart_on.isoformat() if trip.depart_on else "")
            query["check_out"] = query["check_out"] or (trip.return_on.isoformat() if trip.return_on else "")
        elif not query["date"] and trip.depart_on:
            query["date"] = trip.depart_on.isoformat()
        query["sort"] = query["sort"] or "price"
        context = {"trip": trip, "kind": kind, "query": query, "travelers": travelers, "traveler": traveler,
                   "results": None, "errors": {}, "policy_note": None, "cities": reference.city_choices(),
                   "boards": search.BOARDS, "agency_currency": require_agency().currency}
        searched = data.get("search") == "1"
        if searched:
            try:
                if kind == "hotel":
                    results = search.hotel_search(**query)
                else:
                    results = search.flight_search(day=query.pop("date"), **query)
                    query["date"] = data.get("date", "")
            except ValidationError as exc:
                context["errors"] = exc.message_dict
            else:
                context["policy_note"] = search.with_verdicts(trip, traveler, kind, results)
                for result in results:
                    verdict = getattr(result.verdict, "verdict", None)
                    result.reasons = [policy_messages.reason(r.code, r.params) for r in verdict.failed] if verdict else []
                context["results"] = results
        return context

    def get(self, request, pk):
        trip = _trip(pk)
        context = self._context(request, trip, request.GET)
        return render(request, self.template, context, status=400 if context["errors"] else 200)

    def post(self, request, pk):
        trip = _trip(pk)
        data = request.POST
        context = self._context(request, trip, {**data.dict(), "search": "0"})
        try:
            item = search.add_to_trip(actor=request.user, trip=trip, kind=context["kind"], key=data.get("key", ""),
                                      offer=data.get("offer", ""), check_in=data.get("check_in"),
                                      check_out=data.get("check_out"), traveler=context["traveler"])
        except ValidationError as exc:
            context["errors"] = exc.message_dict
            return render(request, self.template, context, status=400)
        messages.success(request, _("“%(item)s” added to the itinerary.") % {"item": item.description})
        return redirect(reverse("trip_detail", args=[trip.pk]) + "#itinerary")
