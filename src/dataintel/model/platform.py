"""The platform's own events: what the AI engine, the intervention engine and the shop send,
as one bundled pipeline template (docs/analytics.md), and the names analytics reads them by.

A project enables the template (``POST /api/v1/projects/{id}/templates/platform``, or
``templates: [platform]`` in a project file): the pipeline ``platform`` is added to its draft.
``cart_id`` and ``user_id`` are the envelope's fields, so they are not repeated as properties.
"""

from __future__ import annotations

from dataintel.model.fields import FieldSpec, FieldType
from dataintel.model.snapshot import EventSpec, PipelineSpec

PLATFORM_TEMPLATE = "platform"
PLATFORM_PIPELINE_ID = "platform"

PREDICTION_EVENT = "prediction"
INTERVENTION_EVENT = "intervention"
HOLDOUT_EVENT = "holdout"

RECOMMENDED_ACTIONS = ("none", "discount", "reminder", "urgency")
CHANNELS = ("websocket", "email", "sms", "push")
INTERVENTION_STATUSES = ("sent", "delivered", "opened", "clicked", "failed")
FAILED_STATUS = "failed"

S, N = FieldType.STRING, FieldType.NUMBER


def _f(name: str, kind: FieldType, required: bool = False, description: str = "") -> FieldSpec:
    return FieldSpec(name=name, type=kind, required=required, description=description)


_EVENTS = [
    EventSpec(
        name="cart_add",
        description="The shop: a product was added to the cart (envelope cart_id, user_id).",
        fields=[
            _f("product_id", S, True),
            _f("price", N, description="Unit price."),
            _f("quantity", N),
            _f("currency", S, description="ISO 4217 code."),
        ],
    ),
    EventSpec(
        name="checkout_start",
        description="The shop: the shopper opened the checkout of the cart.",
        fields=[_f("cart_value", N), _f("item_count", N), _f("currency", S)],
    ),
    EventSpec(
        name=HOLDOUT_EVENT,
        description="The intervention engine: a cart deliberately left without intervention "
        "(the control group of the uplift).",
        fields=[
            _f("reason", S, description="Why it was held out, e.g. 'random 10%'."),
            _f("campaign", S),
            _f("model_version", S),
        ],
    ),
    EventSpec(
        name=INTERVENTION_EVENT,
        description="The intervention engine: a message about the cart; one event per status "
        "change of one intervention_id.",
        fields=[
            _f("intervention_id", S, True),
            _f("channel", S, True, "websocket, email, sms or push."),
            _f("action", S, True, "What was offered: discount, reminder, urgency, ..."),
            _f("campaign", S),
            _f("status", S, True, "sent, delivered, opened, clicked or failed."),
        ],
    ),
    EventSpec(
        name=PREDICTION_EVENT,
        description="The AI engine: the predicted probability that the cart converts.",
        fields=[
            _f("probability", N, True, "0 to 1."),
            _f("confidence", N),
            _f("recommended_action", S, description="none, discount, reminder or urgency."),
            _f("model_version", S, True),
        ],
    ),
    EventSpec(
        name="purchase",
        description="The shop: an order was placed (envelope cart_id: the cart it came from).",
        fields=[
            _f("order_id", S, True),
            _f("revenue", N, True),
            _f("currency", S, description="ISO 4217 code."),
        ],
    ),
]

PLATFORM_PIPELINE = PipelineSpec(
    id=PLATFORM_PIPELINE_ID,
    name="Platform events",
    description="Events of the cart-recovery platform: the shop's carts and orders, the AI "
    "engine's predictions, the intervention engine's interventions and holdouts.",
    unknown_properties="allow",
    events=sorted(_EVENTS, key=lambda e: e.name),
)

TEMPLATES: dict[str, PipelineSpec] = {PLATFORM_TEMPLATE: PLATFORM_PIPELINE}
