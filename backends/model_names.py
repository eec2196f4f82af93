"""One spelling for a base model name, so tokenizers and capabilities agree on what it is.

``normalise_model_name`` turns the spellings users paste into the name the tables use:

* case and surrounding spaces: ``" GPT-4o "`` -> ``gpt-4o``;
* a provider prefix: ``azure/gpt-4o``, ``openai/gpt-4o`` -> ``gpt-4o``;
* Azure's spelling of GPT-3.5: ``gpt-35-turbo`` -> ``gpt-3.5-turbo``;
* fine-tuned models, by their base: OpenAI's ``ft:gpt-4o-mini-2024-07-18:org::id`` and Azure's
  ``gpt-4o-mini-2024-07-18.ft-0123abcd`` -> ``gpt-4o-mini-2024-07-18``.

Dated snapshots (``gpt-4o-2024-08-06``) are kept: which suffixes a family accepts is the
capability table's business (:mod:`backends.capabilities`).
"""

from __future__ import annotations

__all__ = ["normalise_model_name"]


def normalise_model_name(model: str) -> str:
    """The table spelling of ``model`` (see the module docstring)."""
    name = model.strip().lower()
    if name.startswith("ft:"):
        name = name[3:].split(":", 1)[0]
    name = name.rsplit("/", 1)[-1]
    name = name.split(".ft-", 1)[0]
    return name.replace("gpt-35", "gpt-3.5")
