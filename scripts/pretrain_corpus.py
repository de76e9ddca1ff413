"""Deterministic pretraining corpus for the local models: English prose from a small grammar,
chats in the common role formats, and arithmetic questions with their answers.

Everything comes from a seeded `random.Random`, so a seed always yields the same text.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator

EOS = "<|endoftext|>"

# -- vocabulary ------------------------------------------------------------------------------

#: Animate subjects: (singular, plural, pronoun for the singular).
PEOPLE: tuple[tuple[str, str, str], ...] = (
    ("lighthouse keeper", "lighthouse keepers", "she"),
    ("keeper", "keepers", "she"),
    ("sailor", "sailors", "he"),
    ("fisherman", "fishermen", "he"),
    ("teacher", "teachers", "she"),
    ("farmer", "farmers", "he"),
    ("baker", "bakers", "she"),
    ("doctor", "doctors", "he"),
    ("child", "children", "she"),
    ("girl", "girls", "she"),
    ("boy", "boys", "he"),
    ("woman", "women", "she"),
    ("man", "men", "he"),
    ("old captain", "old captains", "he"),
    ("young painter", "young painters", "she"),
    ("cat", "cats", "it"),
    ("dog", "dogs", "it"),
    ("bird", "birds", "it"),
    ("fox", "foxes", "it"),
    ("horse", "horses", "it"),
)

THINGS: tuple[str, ...] = (
    "book",
    "letter",
    "apple",
    "loaf of bread",
    "boat",
    "lamp",
    "map",
    "song",
    "story",
    "ledger",
    "pencil",
    "window",
    "door",
    "garden",
    "house",
    "basket",
    "candle",
    "clock",
    "coat",
    "cup of tea",
    "kite",
    "net",
    "rope",
    "shell",
    "stone",
    "picture",
    "bell",
    "key",
)

#: Adjectives for people and animals, and for things.
ADJECTIVES: tuple[str, ...] = (
    "old",
    "quiet",
    "happy",
    "tired",
    "young",
    "little",
    "gentle",
    "careful",
    "brave",
    "busy",
    "calm",
    "kind",
)
THING_ADJECTIVES: tuple[str, ...] = (
    "small",
    "old",
    "bright",
    "warm",
    "cold",
    "red",
    "blue",
    "green",
    "brown",
    "heavy",
    "new",
)

#: Transitive verbs: (base, third person singular, past).
TRANSITIVE: tuple[tuple[str, str, str], ...] = (
    ("read", "reads", "read"),
    ("write", "writes", "wrote"),
    ("find", "finds", "found"),
    ("carry", "carries", "carried"),
    ("open", "opens", "opened"),
    ("paint", "paints", "painted"),
    ("watch", "watches", "watched"),
    ("count", "counts", "counted"),
    ("fix", "fixes", "fixed"),
    ("keep", "keeps", "kept"),
    ("see", "sees", "saw"),
    ("hold", "holds", "held"),
    ("clean", "cleans", "cleaned"),
    ("bring", "brings", "brought"),
    ("lose", "loses", "lost"),
    ("like", "likes", "liked"),
)

INTRANSITIVE: tuple[tuple[str, str, str], ...] = (
    ("sleep", "sleeps", "slept"),
    ("sing", "sings", "sang"),
    ("walk", "walks", "walked"),
    ("run", "runs", "ran"),
    ("laugh", "laughs", "laughed"),
    ("wait", "waits", "waited"),
    ("swim", "swims", "swam"),
    ("work", "works", "worked"),
    ("dance", "dances", "danced"),
    ("rest", "rests", "rested"),
    ("listen", "listens", "listened"),
)

PLACES: tuple[str, ...] = (
    "in the garden",
    "on the hill",
    "by the sea",
    "near the river",
    "at the market",
    "under the bridge",
    "in the lighthouse",
    "on the beach",
    "in the kitchen",
    "at the harbour",
    "in the old house",
    "by the window",
    "in the village",
    "on the boat",
    "in the forest",
)

TIMES: tuple[str, ...] = (
    "at night",
    "in the morning",
    "in the evening",
    "every day",
    "after the storm",
    "before dinner",
    "on Sunday",
    "in the winter",
    "in the summer",
    "at noon",
)

CONNECTIVES: tuple[str, ...] = ("because", "while", "when", "after")

#: Facts a chat can ask about: (question, answer).
FACTS: tuple[tuple[str, str], ...] = (
    ("What color is the sky?", "The sky is blue."),
    ("What color is grass?", "Grass is green."),
    ("What color is snow?", "Snow is white."),
    ("What color is the sun?", "The sun is yellow."),
    ("What does a cow say?", "A cow says moo."),
    ("What does a dog say?", "A dog says woof."),
    ("What does a cat say?", "A cat says meow."),
    ("What is the opposite of hot?", "The opposite of hot is cold."),
    ("What is the opposite of big?", "The opposite of big is small."),
    ("What is the opposite of day?", "The opposite of day is night."),
    ("How many days are in a week?", "There are 7 days in a week."),
    ("How many legs does a dog have?", "A dog has 4 legs."),
    ("Where do fish live?", "Fish live in the water."),
    ("What does a lighthouse do?", "A lighthouse shines a light for ships at night."),
    ("When does the sun rise?", "The sun rises in the morning."),
)

GREETINGS: tuple[tuple[str, str], ...] = (
    ("Hello!", "Hello! How can I help you today?"),
    ("Hi.", "Hi! What would you like to talk about?"),
    ("Good morning!", "Good morning! I hope you slept well."),
    ("Thank you.", "You are welcome."),
    ("How are you?", "I am well, thank you. How are you?"),
    ("Goodbye!", "Goodbye! Have a nice day."),
)

SYSTEM_PROMPTS: tuple[str, ...] = (
    "You are a helpful assistant.",
    "You are a friendly assistant who answers briefly.",
    "You are a careful assistant. Answer the question.",
)

#: Largest operand of the arithmetic questions (the cookbook's addition env draws 0..100).
MAX_OPERAND = 100


# -- prose -----------------------------------------------------------------------------------


def _article(rng: random.Random, noun: str, adjectives: tuple[str, ...]) -> str:
    """`noun` with a definite or indefinite article and sometimes an adjective."""
    words = noun
    if rng.random() < 0.35:
        words = f"{rng.choice(adjectives)} {noun}"
    if rng.random() < 0.6:
        return f"the {words}"
    return f"{'an' if words[0] in 'aeiou' else 'a'} {words}"


def _subject(rng: random.Random) -> tuple[str, bool, str]:
    """A subject noun phrase, whether it is plural, and its pronoun."""
    singular, plural, pronoun = rng.choice(PEOPLE)
    if rng.random() < 0.25:
        words = plural if rng.random() < 0.5 else f"{rng.choice(ADJECTIVES)} {plural}"
        return f"the {words}", True, "they"
    return _article(rng, singular, ADJECTIVES), False, pronoun


def _verb(forms: tuple[str, str, str], plural: bool, past: bool) -> str:
    if past:
        return forms[2]
    return forms[0] if plural else forms[1]


def _predicate(rng: random.Random, plural: bool, past: bool) -> str:
    """A verb phrase: transitive with an object or intransitive, with optional place/time."""
    if rng.random() < 0.6:
        thing = _article(rng, rng.choice(THINGS), THING_ADJECTIVES)
        phrase = f"{_verb(rng.choice(TRANSITIVE), plural, past)} {thing}"
    else:
        phrase = _verb(rng.choice(INTRANSITIVE), plural, past)
    if rng.random() < 0.5:
        phrase += f" {rng.choice(PLACES)}"
    if rng.random() < 0.3:
        phrase += f" {rng.choice(TIMES)}"
    return phrase


def _be(plural: bool, past: bool) -> str:
    return ("were" if plural else "was") if past else ("are" if plural else "is")


def _capitalise(sentence: str) -> str:
    return sentence[0].upper() + sentence[1:]


def sentence(rng: random.Random, past: bool, subject: tuple[str, bool, str] | None = None) -> str:
    """One grammatical sentence, ending with a full stop."""
    noun, plural, _ = subject if subject is not None else _subject(rng)
    shape = rng.random()
    if shape < 0.45:
        text = f"{noun} {_predicate(rng, plural, past)}"
    elif shape < 0.6:
        text = f"{rng.choice(TIMES)}, {noun} {_predicate(rng, plural, past)}"
    elif shape < 0.72:
        text = f"{noun} {_be(plural, past)} {rng.choice(ADJECTIVES)}"
    elif shape < 0.86:
        first = _predicate(rng, plural, past)
        text = f"{noun} {first} and {_verb(rng.choice(INTRANSITIVE), plural, past)}"
    else:
        other, other_plural, _ = _subject(rng)
        text = (
            f"{noun} {_predicate(rng, plural, past)} {rng.choice(CONNECTIVES)} "
            f"{other} {_predicate(rng, other_plural, past)}"
        )
    return _capitalise(text) + "."


def paragraph(rng: random.Random, topic: tuple[str, bool, str] | None = None) -> str:
    """Two to five sentences in one tense; later sentences often continue with a pronoun."""
    past = rng.random() < 0.5
    subject = topic if topic is not None else _subject(rng)
    pronoun = (subject[2], subject[1] or subject[2] == "they", subject[2])
    sentences = [sentence(rng, past, subject)]
    for _ in range(rng.randint(1, 4)):
        if rng.random() < 0.5:
            sentences.append(sentence(rng, past, pronoun))
        else:
            sentences.append(sentence(rng, past))
    return " ".join(sentences)


# -- arithmetic ------------------------------------------------------------------------------


def operand(rng: random.Random) -> int:
    """A number up to MAX_OPERAND, small ones more often (a small model learns those first)."""
    draw = rng.random()
    if draw < 0.5:
        return rng.randint(0, 9)
    if draw < 0.75:
        return rng.randint(0, 20)
    return rng.randint(0, MAX_OPERAND)


def arithmetic_pair(rng: random.Random) -> tuple[str, int, str, int]:
    """Operands and operator of a small sum or difference (never negative), and its value."""
    x, y = operand(rng), operand(rng)
    if rng.random() < 0.7:
        return str(x), x + y, "+", y
    x, y = max(x, y), min(x, y)
    return str(x), x - y, "-", y


def arithmetic_question(rng: random.Random) -> tuple[str, str]:
    """("What is 12 + 7?", "19") as the cookbook's arithmetic environment asks it."""
    x, value, op, y = arithmetic_pair(rng)
    return f"What is {x} {op} {y}?", str(value)


def arithmetic_lines(rng: random.Random) -> str:
    """A few equations, "12+7=19" or "12 + 7 = 19", one per line."""
    lines = []
    spaced = rng.random() < 0.5
    for _ in range(rng.randint(3, 8)):
        x, value, op, y = arithmetic_pair(rng)
        lines.append(f"{x} {op} {y} = {value}" if spaced else f"{x}{op}{y}={value}")
    return "\n".join(lines)


def arithmetic_quiz(rng: random.Random) -> str:
    """Addition and subtraction questions in the role-colon chat, answered with the bare number
    (the one-shot prompt of the cookbook's arithmetic environment, continued)."""
    turns = []
    for _ in range(rng.randint(2, 6)):
        question, answer = arithmetic_question(rng)
        turns.append(f"User: {question}\n\nAssistant: {answer}\n\n")
    return "".join(turns)


# -- chat ------------------------------------------------------------------------------------


def _exchange(rng: random.Random) -> tuple[str, str]:
    """One user message and the assistant's reply."""
    kind = rng.random()
    if kind < 0.5:
        return arithmetic_question(rng)
    if kind < 0.62:
        return rng.choice(FACTS)
    if kind < 0.7:
        return rng.choice(GREETINGS)
    singular, plural, pronoun = rng.choice(PEOPLE)
    if kind < 0.85:
        return f"Tell me about the {singular}.", paragraph(rng, (f"the {singular}", False, pronoun))
    return (
        f"Write a sentence about the {plural}.",
        sentence(rng, rng.random() < 0.5, (f"the {plural}", True, "they")),
    )


def _turns(rng: random.Random) -> list[tuple[str, str]]:
    return [_exchange(rng) for _ in range(rng.randint(1, 4))]


def role_colon_chat(rng: random.Random) -> str:
    """'User: ...' / 'Assistant: ...' turns, blank-line separated (the cookbook's base-model
    format, whose stop sequence is a blank line then 'User:') or newline separated."""
    gap = "\n\n" if rng.random() < 0.7 else "\n"
    user = "Human" if rng.random() < 0.1 else "User"
    parts = []
    if rng.random() < 0.2:
        parts.append(f"System: {rng.choice(SYSTEM_PROMPTS)}")
    for question, answer in _turns(rng):
        parts.append(f"{user}: {question}")
        parts.append(f"Assistant: {answer}")
    return gap.join(parts) + gap


def special_token_chat(rng: random.Random) -> str:
    """Turns in the local tokenizer's chat template: <|role|>content<|endoftext|>."""
    parts = []
    if rng.random() < 0.3:
        parts.append(f"<|system|>{rng.choice(SYSTEM_PROMPTS)}{EOS}")
    for question, answer in _turns(rng):
        parts.append(f"<|user|>{question}{EOS}<|assistant|>{answer}{EOS}")
    return "".join(parts)


# -- documents -------------------------------------------------------------------------------

#: Document kinds and their weights in the mixture.
DOCUMENT_KINDS: tuple[tuple[Callable[[random.Random], str], float], ...] = (
    (paragraph, 0.30),
    (role_colon_chat, 0.20),
    (special_token_chat, 0.12),
    (arithmetic_lines, 0.18),
    (arithmetic_quiz, 0.20),
)


def documents(seed: int) -> Iterator[str]:
    """An endless, deterministic stream of documents; plain-text ones end with <|endoftext|>."""
    rng = random.Random(seed)
    makers = [maker for maker, _ in DOCUMENT_KINDS]
    weights = [weight for _, weight in DOCUMENT_KINDS]
    while True:
        maker = rng.choices(makers, weights)[0]
        text = maker(rng)
        yield text if text.endswith(EOS) else text + EOS


def corpus_text(seed: int, n_chars: int) -> str:
    """Whole documents from `documents(seed)` until at least n_chars characters."""
    pieces: list[str] = []
    total = 0
    for doc in documents(seed):
        pieces.append(doc)
        total += len(doc)
        if total >= n_chars:
            break
    return "".join(pieces)


if __name__ == "__main__":
    print(corpus_text(0, 3000))
