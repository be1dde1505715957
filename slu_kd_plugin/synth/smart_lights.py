"""The 6 SNIPS smart-lights intents and a grammar of their phrasings.

A phrasing is a template over the slots ``room``, ``color`` and ``brightness``; filled
in, it becomes the Snips NLU ``data`` parts of one dataset utterance (slot values
tagged with ``entity``/``slot_name``, the words between them plain text).  Brightness
levels are spelled in words: the CTC alphabet drops digits (corpora/labels.to_ltr),
so "50 percent" would reach AM-PT as "percent" alone.
"""
import re
from typing import Dict, List, Optional, Tuple

Part = Tuple[str, Optional[str]]   # (text, slot name or None)
Phrasing = Tuple[Part, ...]

ROOMS = ("kitchen", "bedroom", "living room", "bathroom", "garage", "office",
         "hallway", "dining room", "basement")
COLORS = ("red", "blue", "green", "yellow", "purple", "orange", "pink", "white")
LEVELS = ("ten", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty",
          "ninety", "one hundred")
SLOT_VALUES = {"room": ROOMS, "color": COLORS, "brightness": LEVELS}

# intent -> templates.  Templates without {room} say the intent for the whole home;
# the ones with a room also exist because most real requests name one.
_TEMPLATES = {
    "SwitchLightOn": (
        "turn on the lights", "switch the lights on", "lights on please",
        "can you turn the light on", "i need some light", "switch on the light",
        "put the lights on",
        "turn on the lights in the {room}", "switch on the {room} light",
        "turn the {room} lights on", "lights on in the {room}", "please light up the {room}",
        "can you switch on the lights in the {room}",
    ),
    "SwitchLightOff": (
        "turn off the lights", "switch the lights off", "lights off please",
        "kill the lights", "shut off the light", "turn the light off", "no more light",
        "turn off the lights in the {room}", "switch off the {room} light",
        "turn the {room} lights off", "lights off in the {room}",
        "shut the lights in the {room}", "please turn the {room} light off",
    ),
    "IncreaseBrightness": (
        "brighten the lights", "increase the brightness", "turn the lights up",
        "make it brighter", "more light please", "raise the brightness",
        "brighten the lights in the {room}", "increase the brightness in the {room}",
        "turn up the {room} lights", "make the {room} brighter",
        "raise the lights in the {room}",
    ),
    "DecreaseBrightness": (
        "dim the lights", "decrease the brightness", "turn the lights down",
        "make it darker", "lower the brightness", "less light please",
        "dim the lights in the {room}", "decrease the brightness in the {room}",
        "turn down the {room} lights", "make the {room} darker",
        "lower the lights in the {room}",
    ),
    "SetLightColor": (
        "make the lights {color}", "change the color to {color}", "set the lights to {color}",
        "turn the light {color}", "i want {color} light",
        "make the {room} lights {color}", "change the light in the {room} to {color}",
        "set the {room} lights to {color}", "turn the lights in the {room} {color}",
    ),
    "SetLightBrightness": (
        "set the brightness to {brightness} percent", "put the lights at {brightness} percent",
        "brightness {brightness} percent please", "set the lights to level {brightness}",
        "set the {room} lights to {brightness} percent",
        "put the brightness in the {room} at {brightness}",
        "set the lights in the {room} to {brightness} percent",
        "change the {room} brightness to {brightness} percent",
    ),
}
_SLOT = re.compile(r"\{(\w+)\}")


def _parts(template: str, values: Dict[str, str]) -> Phrasing:
    pieces = _SLOT.split(template)  # text, slot, text, slot, ..., text
    parts = []
    for i, piece in enumerate(pieces):
        if i % 2:
            parts.append((values[piece], piece))
        elif piece:
            parts.append((piece, None))
    return tuple(parts)


def _fillings(t_index: int, template: str) -> List[Dict[str, str]]:
    """Slot values for one template: every value of its main slot; a room beside a
    colour or level is paired in turn, not crossed (9 x 10 would swamp the table)."""
    slots = _SLOT.findall(template)
    if not slots:
        return [{}]
    main = next((s for s in slots if s != "room"), "room")
    out = []
    for j, value in enumerate(SLOT_VALUES[main]):
        filling = {main: value}
        if "room" in slots and main != "room":
            filling["room"] = ROOMS[(3 * t_index + j) % len(ROOMS)]
        out.append(filling)
    return out


def _build() -> Dict[str, List[Phrasing]]:
    return {intent: [_parts(t, f) for i, t in enumerate(templates) for f in _fillings(i, t)]
            for intent, templates in sorted(_TEMPLATES.items())}


# intent -> phrasings, sorted by intent so seeded sampling never depends on how the
# table above is written.
PHRASINGS: Dict[str, List[Phrasing]] = _build()
INTENTS: List[str] = list(PHRASINGS)


def text_of(phrasing: Phrasing) -> str:
    return "".join(text for text, _ in phrasing)


def nlu_data(phrasing: Phrasing) -> List[dict]:
    """A phrasing as Snips NLU ``data`` parts (entity named as its slot)."""
    return [{"text": t} if slot is None else {"text": t, "entity": slot, "slot_name": slot}
            for t, slot in phrasing]
