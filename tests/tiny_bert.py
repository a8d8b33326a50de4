"""A two-layer BERT checkpoint directory built in the test: the stand-in for a pretrained encoder (me5-small)."""

from pathlib import Path


def tiny_local_bert(directory: Path, corpus: list[str]) -> Path:
    """A two-layer BERT and a tokenizer learned from ``corpus``, saved as a checkpoint directory: me5's stand-in."""
    from transformers import BertConfig, BertModel

    from hybrid_repro.modeling.tokenizer import build_bpe_tokenizer

    tokenizer = build_bpe_tokenizer(["query: ", "passage: ", *corpus], vocab_size=300, model_max_length=128)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, pad_token_id=tokenizer.pad_token_id)
    BertModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
