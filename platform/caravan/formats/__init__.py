"""Caravan's own date and number formats per language (``FORMAT_MODULE_PATH``), read by Django's
``date`` filter and by :mod:`caravan.formatting`. What is not set here comes from Django's locale
module for the language (input formats among them)."""
