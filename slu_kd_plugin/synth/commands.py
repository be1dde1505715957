"""The 31 Fluent Speech Commands intents and several natural phrasings of each.

Slot values are spelled exactly as FSC's csv spells them (``change language`` with a
space, languages capitalised, ``none`` for an empty slot), so code written against
the synthetic corpus reads the real one unchanged.  Phrasings are written the way
FSC transcribes them: sentence case, mostly without final punctuation, a few with
a comma or a full stop (the real corpus has those too, and csv quoting must cope).
"""
from typing import Dict, List, Tuple

Intent = Tuple[str, str, str]  # (action, object, location)

ROOMS = ("kitchen", "bedroom", "washroom")
LANGUAGES = ("Chinese", "Korean", "English", "German")

# Lights: templates over a room, for "on" and "off".  The room-less intent keeps its
# own list because "Lights on" style phrasings have no natural {room} slot.
_LIGHTS_ROOM = {
    "on": (
        "Turn on the {room} lights", "Turn the lights on in the {room}",
        "Switch on the {room} lights", "{Room} lights on", "Lights on in the {room}",
        "Turn on the lights in the {room}", "Switch the lights on in the {room}",
        "Put the {room} lights on",
    ),
    "off": (
        "Turn off the {room} lights", "Turn the lights off in the {room}",
        "Switch off the {room} lights", "{Room} lights off", "Lights off in the {room}",
        "Turn off the lights in the {room}", "Shut off the {room} lights",
        "Switch the {room} lights off",
    ),
}
_HEAT_ROOM = {
    "up": (
        "Turn up the heat in the {room}", "Make the {room} warmer", "{Room} heat up",
        "Increase the temperature in the {room}", "It's too cold in the {room}",
        "Turn the heat up in the {room}", "Heat up the {room}",
        "Raise the {room} temperature", "Increase the heating in the {room}",
    ),
    "down": (
        "Turn down the heat in the {room}", "Make the {room} cooler", "{Room} heat down",
        "Decrease the temperature in the {room}", "It's too hot in the {room}",
        "Turn the heat down in the {room}", "Cool down the {room}",
        "Lower the {room} temperature", "Decrease the heating in the {room}",
    ),
}
_LANGUAGE = (
    "Change the language to {lang}", "Switch to {lang}", "Set the language to {lang}",
    "Use {lang}", "{lang} please", "Switch the language to {lang}",
    "Change language to {lang}", "Set my device to {lang}",
    "I need to practice my {lang}. Switch the language",
)
_BRING = (
    "Bring me {it}", "Get me {it}", "Fetch {it}", "Go get {it}", "I need {it}",
    "Can you bring me {it}", "Bring {it}, please",
)
_SWITCHABLE = {  # object -> on phrasings, off phrasings (room-less)
    "lights": (
        ("Turn on the lights", "Turn the lights on", "Switch on the lights",
         "Switch the lights on", "Lights on", "Put the lights on",
         "Can you turn the lights on", "Lights on, please"),
        ("Turn off the lights", "Turn the lights off", "Switch off the lights",
         "Switch the lights off", "Lights off", "Shut off the lights",
         "Kill the lights", "Lights off, please"),
    ),
    "lamp": (
        ("Turn on the lamp", "Turn the lamp on", "Switch on the lamp",
         "Switch the lamp on", "Lamp on", "Put the lamp on", "Can you turn the lamp on"),
        ("Turn off the lamp", "Turn the lamp off", "Switch off the lamp",
         "Switch the lamp off", "Lamp off", "Shut off the lamp", "Can you turn the lamp off"),
    ),
    "music": (
        ("Play music", "Play some music", "Put on some music", "Start the music",
         "Turn on the music", "Resume the music", "Music on", "Play a song"),
        ("Stop the music", "Stop music", "Pause music", "Pause the music",
         "Turn off the music", "Music off", "Turn the music off", "Stop playing music"),
    ),
}
_ROOMLESS = {
    ("increase", "volume"): (
        "Increase the volume", "Turn up the volume", "Volume up", "Turn it up", "Louder",
        "Make it louder", "Louder please", "Raise the volume", "I can't hear that",
        "Turn the volume up",
    ),
    ("decrease", "volume"): (
        "Decrease the volume", "Turn down the volume", "Volume down", "Turn it down",
        "Quieter", "Make it quieter", "Lower the volume", "Too loud", "That's too loud",
        "Turn the volume down",
    ),
    ("increase", "heat"): (
        "Increase the heating", "Turn up the heat", "Turn the heat up", "Heat up",
        "Make it warmer", "It's too cold", "Increase the temperature", "More heat",
        "Raise the temperature",
    ),
    ("decrease", "heat"): (
        "Decrease the heating", "Turn down the heat", "Turn the heat down", "Heat down",
        "Make it cooler", "It's too hot", "Decrease the temperature", "Less heat",
        "Lower the temperature",
    ),
    ("change language", "none"): (
        "Change language", "Change the language", "Switch language",
        "Switch the language", "Language settings", "Set a different language",
        "I want to change the language", "Use a different language",
    ),
}
_BRING_ITEMS = {  # FSC object -> noun phrases (a bring phrasing needs a determiner)
    "newspaper": ("the newspaper", "the paper"),
    "juice": ("some juice", "juice"),
    "socks": ("my socks", "socks"),
    "shoes": ("my shoes", "shoes"),
}


def _room_phrasings(templates, room):
    return [t.format(room=room, Room=room.capitalize()) for t in templates]


def _bring_phrasings(obj):
    # First noun phrase in every template, the second one only in the short
    # templates, so each object gets a handful of phrasings and none repeats.
    first, second = _BRING_ITEMS[obj]
    out = [t.format(it=first) for t in _BRING]
    out += [t.format(it=second) for t in _BRING[:3]]
    return out


def _build() -> Dict[Intent, List[str]]:
    table: Dict[Intent, List[str]] = {}
    for obj, (on, off) in _SWITCHABLE.items():
        table[("activate", obj, "none")] = list(on)
        table[("deactivate", obj, "none")] = list(off)
    for room in ROOMS:
        table[("activate", "lights", room)] = _room_phrasings(_LIGHTS_ROOM["on"], room)
        table[("deactivate", "lights", room)] = _room_phrasings(_LIGHTS_ROOM["off"], room)
        table[("increase", "heat", room)] = _room_phrasings(_HEAT_ROOM["up"], room)
        table[("decrease", "heat", room)] = _room_phrasings(_HEAT_ROOM["down"], room)
    for (action, obj), texts in _ROOMLESS.items():
        table[(action, obj, "none")] = list(texts)
    for lang in LANGUAGES:
        table[("change language", lang, "none")] = [t.format(lang=lang) for t in _LANGUAGE]
    for obj in _BRING_ITEMS:
        table[("bring", obj, "none")] = _bring_phrasings(obj)
    return dict(sorted(table.items()))


# intent -> phrasings; sorted so iteration order (and hence any seeded sampling over
# it) never depends on how the table above happens to be written.
PHRASINGS: Dict[Intent, List[str]] = _build()
INTENTS: List[Intent] = list(PHRASINGS)


def all_phrasings() -> List[Tuple[str, Intent]]:
    """Every (phrasing, intent) pair, in a fixed order."""
    return [(text, intent) for intent, texts in PHRASINGS.items() for text in texts]
