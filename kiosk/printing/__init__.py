"""Printing for residents: what a document is, and the CUPS queue it goes to."""
