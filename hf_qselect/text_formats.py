"""Instruction and chat rows as text and tokens for causal LMs.

Four row formats are recognised by their columns:

* ``messages``: a list of ``{"role", "content"}`` turns, rendered with the tokenizer's chat template (``role: content``
  lines when it has none); the loss is on every token;
* ``prompt`` + ``completion``: the loss is on the completion's tokens only;
* Alpaca's ``instruction`` (+ ``input``) + ``output``: the instruction (and input) as the user turn, the output as the
  assistant's, the loss on the output's tokens only;
* plain text in ``text_column``: the loss is on every token.
"""
from __future__ import annotations

from typing import Any

FORMATS = ("auto", "text", "messages", "prompt_completion", "alpaca")
IGNORE = -100


def detect_format(columns: list[str], text_column: str = "text") -> str:
    """The row format the columns say, or a one-line error listing what was looked for."""
    if "messages" in columns:
        return "messages"
    if "prompt" in columns and "completion" in columns:
        return "prompt_completion"
    if "instruction" in columns and "output" in columns:
        return "alpaca"
    if text_column in columns:
        return "text"
    raise KeyError(f"no usable text: the columns {columns} hold none of a 'messages' column, 'prompt'/'completion', "
                   f"Alpaca's 'instruction'/'output', or text_column={text_column!r}")


def check_messages(messages: Any, row: int) -> list[dict[str, str]]:
    if not isinstance(messages, list) or not messages or not all(
            isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in messages):
        raise ValueError(f"row {row}: 'messages' must be a non-empty list of {{'role': str, 'content': str}} turns, got {str(messages)[:80]}")
    return messages


def render_messages(messages: list[dict[str, str]], tokenizer: Any = None, add_generation_prompt: bool = False) -> str:
    """The chat template's text of ``messages`` (``role: content`` lines without a template)."""
    if tokenizer is not None and getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)
    return "\n".join(f"{m['role']}: {m['content']}" for m in messages) + ("\nassistant:" if add_generation_prompt else "")


def has_answer(answer: Any) -> bool:
    """A response worth training on: a string that is not blank."""
    return isinstance(answer, str) and bool(answer.strip())


def check_answer(answer: Any, row: int) -> None:
    if not has_answer(answer):
        raise ValueError(f"row {row}: the response is empty; drop such rows first")


def prompt_and_answer(row: dict[str, Any], fmt: str, tokenizer: Any, row_index: int, text_column: str = "text") -> tuple[str, str]:
    """``(prompt text, answer text)``: the loss goes on the answer; a text or messages row is all answer."""
    if fmt == "messages":
        return "", render_messages(check_messages(row["messages"], row_index), tokenizer)
    if fmt == "text":
        text = row[text_column]
        if not isinstance(text, str):
            raise TypeError(f"row {row_index}: text column {text_column!r} must hold strings, got {type(text).__name__}")
        return "", text
    if fmt == "prompt_completion":
        prompt, answer = row["prompt"], row["completion"]
    else:
        prompt = row["instruction"] + (f"\n\n{row['input']}" if row.get("input") else "")
        answer = row["output"]
    check_answer(answer, row_index)
    messages = [{"role": "user", "content": prompt}]
    if fmt == "alpaca" or getattr(tokenizer, "chat_template", None):
        head = render_messages(messages, tokenizer, add_generation_prompt=True)
        return head, answer + ((tokenizer.eos_token or "") if tokenizer is not None else "")
    return prompt, answer


RESPONSE = {"prompt_completion": "completion", "alpaca": "output"}


def without_empty_responses(dataset: Any, text_column: str = "text") -> tuple[Any, int]:
    """``(dataset without the rows whose response is empty or blank, how many were dropped)``; text and chat rows are
    kept as they are."""
    fmt = "text" if text_column in dataset.column_names else detect_format(dataset.column_names, text_column)
    if fmt not in RESPONSE:
        return dataset, 0
    column = RESPONSE[fmt]
    keep = [i for i, answer in enumerate(dataset[column]) if has_answer(answer)]
    return (dataset.select(keep) if len(keep) < len(dataset) else dataset), len(dataset) - len(keep)


def row_texts(dataset: Any, text_column: str = "text", tokenizer: Any = None) -> tuple[list[str], str]:
    """``(one text per row, the format)``: the text column as it is, or each instruction / chat row rendered whole
    (prompt and response; ``messages`` through ``tokenizer``'s chat template when given, else ``role: content``
    lines). A one-line error names the first bad row (turns that are not role/content, an empty response)."""
    fmt = "text" if text_column in dataset.column_names else detect_format(dataset.column_names, text_column)
    if fmt == "text":
        from .validation import text_values

        return text_values(dataset, text_column), fmt
    columns = {"messages": ["messages"], "prompt_completion": ["prompt", "completion"],
               "alpaca": ["instruction", "input", "output"]}[fmt]
    table = dataset.select_columns([c for c in columns if c in dataset.column_names]).to_dict()
    texts = []
    for index in range(len(dataset)):
        row = {k: v[index] for k, v in table.items()}
        if fmt == "messages":
            texts.append(render_messages(check_messages(row["messages"], index), tokenizer))
            continue
        for name in columns:
            if name in row and row[name] is not None and not isinstance(row[name], str):
                raise TypeError(f"row {index}: column {name!r} must hold strings, got {type(row[name]).__name__}")
        parts = [row["prompt"]] if fmt == "prompt_completion" else [row["instruction"], row.get("input") or ""]
        answer = row["completion" if fmt == "prompt_completion" else "output"]
        check_answer(answer, index)
        texts.append("\n\n".join(p for p in (*parts, answer) if p))
    return texts, fmt


def tokenize_causal(dataset: Any, tokenizer: Any, max_length: int, text_column: str = "text", fmt: str = "auto") -> Any:
    """``input_ids`` and ``labels`` (-100 on prompt tokens) of every row, cut at ``max_length`` tokens."""
    if max_length < 2:
        raise ValueError(f"max_length must be at least 2, got {max_length}")
    fmt = detect_format(dataset.column_names, text_column) if fmt == "auto" else fmt
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {list(FORMATS)}, got {fmt!r}")

    def encode(rows: dict[str, list], indices: list[int]) -> dict[str, list]:
        ids, labels = [], []
        for offset, index in enumerate(indices):
            row = {k: v[offset] for k, v in rows.items()}
            prompt, answer = prompt_and_answer(row, fmt, tokenizer, index, text_column)
            head = tokenizer(prompt, add_special_tokens=False)["input_ids"] if prompt else []
            tail = tokenizer(answer, add_special_tokens=False)["input_ids"]
            tokens = (head + tail)[:max_length]
            ids.append(tokens)
            labels.append(([IGNORE] * len(head) + tail)[:max_length])
        return {"input_ids": ids, "labels": labels}

    return dataset.map(encode, batched=True, with_indices=True, remove_columns=dataset.column_names, desc="tokenizing")
