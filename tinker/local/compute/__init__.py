"""The numpy half of the local server: a small transformer trained with LoRA on the CPU.

`catalogue` (model sizes, vocabulary, tokenizer), `transformer` (the network, its KV cache and
exact backward pass), `lora` (adapters and their PEFT names), `losses` (the built-in losses),
`custom_loss` with `graph_values` / `graph_math` / `graph_ops` (uploaded loss graphs run with
exact gradients), `stability` (what samplers record for stable_reinforce), `optimizers` and
`dimuon` with `optimizer_choice` (AdamW or Dimuon per run), `trainer` (one training run's
state), `generation` with `prefix_cache` and `prompt_scoring` (sampling), `inflight` (samplers
that follow a run's weights), `export` (PEFT-style exports, checkpoint copies) and `backend`
(the interface the server uses, and its implementation over these modules). Nothing here
imports the server half.
"""
