"""Run by tests/test_distributed.py under ``torchrun --nproc_per_node 2``: each rank writes what it trained on."""
import json
import os
import sys

from datasets import Dataset
from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification, TrainingArguments

from hf_qselect import InstanceSelector, QSelectTrainer

model_dir, out = sys.argv[1], sys.argv[2]
tokenizer = AutoTokenizer.from_pretrained(model_dir)
texts = [f"review number {i} is {'good' if i % 2 else 'bad'} in its own way" for i in range(48)]
data = Dataset.from_dict({"text": texts, "label": [i % 2 for i in range(48)]})
data = data.map(lambda b: tokenizer(b["text"], truncation=True, max_length=16, padding="max_length"), batched=True)
model = BertForSequenceClassification(BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=1,
                                                 num_attention_heads=2, intermediate_size=32, num_labels=2))
args = TrainingArguments(output_dir=os.path.join(out, "run"), per_device_train_batch_size=4, num_train_epochs=1, report_to=[],
                         save_strategy="no", use_cpu=True, disable_tqdm=True, seed=0)
selector = InstanceSelector(keep=0.5, block_size=12, n_jobs=1, show_progress=False, cache_dir=os.path.join(out, "cache"))
trainer = QSelectTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer, instance_selector=selector)
trainer.train()
rank = trainer.accelerator.process_index
record = {"rank": rank, "world": trainer.accelerator.num_processes, "fitted_here": hasattr(selector, "mask_"),
          "indices": [int(i) for i in trainer.selected_indices_], "rows_trained": len(trainer.train_dataset),
          "texts": list(trainer.train_dataset["text"])}
with open(os.path.join(out, f"rank{rank}.json"), "w") as fh:
    json.dump(record, fh)
