"""CDS Hooks cards for the WM IgM response service: assessment in, cards out."""

from .build import CardContext, build_cards, card_facts

__all__ = ["CardContext", "build_cards", "card_facts"]
