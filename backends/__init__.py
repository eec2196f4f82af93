"""Model backends and token counters for modelreg.

Import what you need from the submodules (``backends.azure.AzureOpenAIModel``,
``backends.token_counting.OpenAITokenCounter``...); this package imports nothing on its own so
that ``import backends`` stays free.
"""

__all__: list[str] = []
