"""The long-context suite: deterministic from a seed, needles where they should be, exact-match
scoring, and prompts that measure exactly the context length in a real BPE tokenizer."""

from __future__ import annotations

import re
import string

import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from harness.config import TaskConfig
from harness.prompts import Sample, build_samples
from harness.tasks import get_task
from harness.tasks.base import NOISE_SENTENCES, Example
from harness.tasks.long_context import KEY_ADJECTIVES, KEY_NOUNS
from harness.tinymodel.tokenizer import build_tokenizer

TASKS = ("passkey", "niah-multikey", "variable-tracking")
CHAT_TEMPLATE = (
    "{% for message in messages %}<|user|>\n{{ message['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


@pytest.fixture(scope="module")
def bpe_tokenizer() -> PreTrainedTokenizerFast:
    """A byte-level BPE trained here on text like the prompts': subword merges make token counts
    step unevenly with characters, the hard case for exact fitting."""
    corpus = list(NOISE_SENTENCES) * 50
    corpus += [f"One of the special magic numbers for {a}-{n} is: {1000 * i + 7}." for i, (a, n) in enumerate(zip(KEY_ADJECTIVES, KEY_NOUNS))]
    corpus += ["There is a pass key hidden in the text below. Find it and remember it.", "VAR ABCDE = VAR FGHIJ.",
               "What is the pass key? The pass key is 12345.", string.ascii_uppercase, string.digits] * 10
    core = Tokenizer(models.BPE(unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["[UNK]", "[EOS]"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    core.train_from_iterator(corpus, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=core, eos_token="[EOS]", unk_token="[UNK]")


@pytest.mark.parametrize("name", TASKS)
def test_examples_are_a_function_of_the_seed(name):
    task = get_task(name)
    first = task.examples(TaskConfig(name=name, seed=3))
    assert first == task.examples(TaskConfig(name=name, seed=3))
    assert [e.answer for e in first] != [e.answer for e in task.examples(TaskConfig(name=name, seed=4))]
    assert len(first) == 8 and len({e.id for e in first}) == 8


def test_passkey_hides_its_key_at_its_depth():
    task = get_task("passkey")
    cfg = TaskConfig(name="passkey")
    example = task.examples(cfg)[0]
    haystack = " ".join(NOISE_SENTENCES) * 40
    prompt = task.render(example, cfg, haystack)
    needle = example.metadata["needles"][0]
    assert prompt.count(example.answer) == 2 and needle in prompt  # "The pass key is K. ... K is the pass key."
    position = prompt.index(needle) - prompt.index("\n\n") - 2
    assert abs(position / len(haystack) - example.metadata["depths"][0]) < 0.05
    assert prompt.endswith("What is the pass key? The pass key is")
    assert example.category == f"depth {example.metadata['depths'][0]:.1f}"


def test_multikey_needles_all_appear_and_one_is_asked():
    task = get_task("niah-multikey")
    cfg = TaskConfig(name="niah-multikey")
    for example in task.examples(cfg):
        prompt = task.render(example, cfg, " ".join(NOISE_SENTENCES) * 20)
        assert all(needle in prompt for needle in example.metadata["needles"])
        asked = re.search(r"magic number for (\S+) mentioned", prompt).group(1)
        assert f"for {asked} is: {example.answer}." in prompt


def test_variable_tracking_is_one_chain_in_order_and_the_question_says_how_many_names():
    task = get_task("variable-tracking")
    cfg = TaskConfig(name="variable-tracking")
    for example in task.examples(cfg):
        prompt = task.render(example, cfg, " ".join(NOISE_SENTENCES) * 30)
        value = re.search(r"assigned the value (\d+) in the text", prompt).group(1)
        # follow the assignments through the prompt, as a reader would
        holders, statements = set(), re.findall(r"VAR ([A-Z]{5}) = (?:VAR )?([A-Z]{5}|\d+)\.", prompt)
        for name, source in statements:
            if source == value or source in holders:
                holders.add(name)
        assert len(statements) == 5 and holders == set(example.answer.split(" "))  # RULER's vt: one chain, 4 hops
        assert f"5 variables are assgined the value {value}, they are:" in prompt  # RULER's answer prefix


@pytest.mark.parametrize(
    "name,answer,completion,value,extracted",
    [
        ("passkey", "71432", " 71432. Remember it.", 1.0, "71432"),
        ("passkey", "71432", " 71433", 0.0, None),
        ("passkey", "71432", " I do not know.", 0.0, None),
        ("niah-multikey", "4827163", " 4827163.", 1.0, "4827163"),
        ("niah-multikey", "4827163", " 9999999, or 4827163", 1.0, "4827163"),  # RULER: the reference occurs
        ("variable-tracking", "ABCDE FGHIJ KLMNO", " FGHIJ, abcde and KLMNO", 1.0, "ABCDE FGHIJ KLMNO"),  # any case
        ("variable-tracking", "ABCDE FGHIJ KLMNO", " ABCDE, FGHIJ", 2 / 3, "ABCDE FGHIJ"),  # partial credit
        ("variable-tracking", "ABCDE FGHIJ KLMNO", " ABCDE FGHIJ KLMNO PQRST", 1.0, "ABCDE FGHIJ KLMNO"),  # extras cost nothing
    ],
)
def test_ruler_string_match_all_scoring(name, answer, completion, value, extracted):
    score = get_task(name).score(Example(id="x", question="?", answer=answer), completion)
    assert score.score == pytest.approx(value) and score.correct is (value == 1.0) and score.extracted == extracted


@pytest.mark.parametrize("chat", [False, True], ids=["plain", "chat-template"])
def test_a_16k_prompt_measures_exactly_16k_tokens_of_a_bpe_tokenizer(bpe_tokenizer, chat):
    bpe_tokenizer.chat_template = CHAT_TEMPLATE if chat else None
    for name in TASKS:
        cfg = TaskConfig(name=name, num_samples=2, use_chat_template=chat)
        samples = build_samples(get_task(name), cfg, bpe_tokenizer, 16384)
        for sample in samples:
            assert isinstance(sample, Sample), sample
            assert len(sample.prompt_ids) == 16384
            if chat:
                ids = bpe_tokenizer.apply_chat_template([{"role": "user", "content": sample.prompt_text}], add_generation_prompt=True, tokenize=True)
                ids = ids["input_ids"] if hasattr(ids, "keys") else ids
            else:
                ids = bpe_tokenizer(sample.prompt_text)["input_ids"]
            assert list(ids) == sample.prompt_ids  # the recorded text re-tokenizes to the same 16384 ids
            assert all(needle in sample.prompt_text for needle in sample.example.metadata["needles"])


def test_every_context_length_fits_exactly_with_the_tiny_models_tokenizer():
    tokenizer = build_tokenizer()  # one token per character: the context axis of the embedded sweep
    for target in (1024, 2048, 4096):
        samples = build_samples(get_task("passkey"), TaskConfig(name="passkey", num_samples=1), tokenizer, target)
        assert [len(s.prompt_ids) for s in samples] == [target]


def test_a_context_shorter_than_the_bare_prompt_is_unfittable(bpe_tokenizer):
    bpe_tokenizer.chat_template = None
    samples = build_samples(get_task("variable-tracking"), TaskConfig(name="variable-tracking", num_samples=1), bpe_tokenizer, 16)
    assert not isinstance(samples[0], Sample) and "more than the context's 16" in samples[0].reason


def test_a_prompt_that_would_run_past_the_models_positions_is_an_error():
    from harness.prompts import within_positions

    samples = build_samples(get_task("passkey"), TaskConfig(name="passkey", num_samples=2), build_tokenizer(), 1000)
    kept = within_positions(samples, max_positions=1024, max_new_tokens=16)
    assert all(isinstance(s, Sample) for s in kept)
    refused = within_positions(samples, max_positions=1010, max_new_tokens=16)
    assert [s.reason for s in refused] == ["prompt of 1000 tokens + max_new_tokens 16 exceeds the model's 1010 positions"] * 2
    assert within_positions(samples, max_positions=None, max_new_tokens=16) == samples
