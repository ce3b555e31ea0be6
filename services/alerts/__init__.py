"""Alerts on order-flow events: rules (``rules``), their evaluation on the feed's own
messages (``tap``, ``trade_kinds``, ``book_kinds``), the event log and rule persistence
(``events``, ``rule_store``, ``redis_backend``) and delivery to webhooks (``delivery``).
"""
