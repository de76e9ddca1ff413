"""The numpy half of the local server: a small transformer trained with LoRA on the CPU.

`catalogue` (model sizes, vocabulary, tokenizer), `transformer` (the network, its KV cache and
exact backward pass), `lora` (adapters and their PEFT names), `losses`, `optimizers`, `trainer`
(one training run's state), `generation` (sampling), `backend` (the interface the server uses,
and its implementation over these modules). Nothing here imports the server half.
"""
