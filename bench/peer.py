"""The peer of our benchmarks: Hugging Face transformers' PyTorch BERT / MobileBERT, in a worker.

Imports torch and transformers only (never TensorFlow, so a peer worker's memory and threads are
torch's alone). The parent turns our config JSON into transformers' fields with the project's own
mapping (mobilebert/export/hf_mapping.hf_config) and passes them here as `hf_fields`.
"""

import os

import numpy as np
import torch
import transformers

import compare

# Transfer factors in pretrain.distillation.TransferLosses order.
FACTOR_NAMES = ("feature_map", "attention", "mean", "variance")
LAYER_NORM_EPSILON = 1e-12  # pretrain/distillation.py's


def hf_model(hf_fields, model_class, **overrides):
  """A freshly initialized transformers `model_class` from hf_mapping.hf_config fields; `overrides`
  replace fields or add config arguments such as attn_implementation."""
  fields = {k: v for k, v in hf_fields.items() if k not in ("architectures", "model_type")}
  fields.update(overrides)
  return getattr(transformers, model_class)(
      transformers.AutoConfig.for_model(hf_fields["model_type"], **fields))


def _torch_setup(threads=None, seed=0):
  torch.manual_seed(seed)
  torch.set_num_threads(threads or os.cpu_count())


def _long(array):
  return torch.from_numpy(np.asarray(array, np.int64))


class Classifier:
  """MobileBertForSequenceClassification: AdamW fine-tuning step (training) or inference."""

  def __init__(self, hf_fields, seq, batch, training, threads=None):
    _torch_setup(threads)
    self.model = hf_model(hf_fields, "MobileBertForSequenceClassification", num_labels=2)
    self.model.train(training)
    self.training = training
    ids, mask, labels = compare.batch_of(hf_fields["vocab_size"], batch, seq)
    self.inputs = dict(input_ids=_long(ids), attention_mask=_long(mask))
    self.labels = _long(labels)
    if training:
      self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=5e-5, weight_decay=0.01)

  def step(self):
    if not self.training:
      with torch.inference_mode():
        self.model(**self.inputs)
      return
    self.model(**self.inputs, labels=self.labels).loss.backward()
    torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
    self.optimizer.step()
    self.optimizer.zero_grad()


# -- the transfer losses of pretrain/distillation.py, on transformers' outputs ---------------------
def feature_map_transfer(teacher_hidden, student_hidden):
  """MSE of the parameter-free layer-normalized [B, T, H] hidden states, mean over B, T, H."""
  width = (teacher_hidden.shape[-1],)
  teacher = torch.nn.functional.layer_norm(teacher_hidden, width, eps=LAYER_NORM_EPSILON)
  student = torch.nn.functional.layer_norm(student_hidden, width, eps=LAYER_NORM_EPSILON)
  return torch.mean((teacher.detach() - student) ** 2)


def attention_transfer(teacher_probs, student_probs):
  """KL(teacher || student) per head of [B, N, F, T] attention probabilities (what transformers
  returns; ours takes the scores): sum over keys T, mean over B, N, F. Masked keys (p = 0) add 0."""
  teacher = teacher_probs.detach()
  kl = torch.xlogy(teacher, teacher) - teacher * torch.log(student_probs.clamp_min(1e-30))
  return torch.mean(torch.sum(kl, dim=-1))


def mean_variance_transfer(teacher_hidden, student_hidden):
  """(mean over B, T of (mu_t - mu_s)^2, of |var_t - var_s|), statistics over the hidden axis."""
  teacher_variance, teacher_mean = torch.var_mean(teacher_hidden.detach(), -1, correction=0)
  student_variance, student_mean = torch.var_mean(student_hidden, -1, correction=0)
  return (torch.mean((teacher_mean - student_mean) ** 2),
          torch.mean(torch.abs(teacher_variance - student_variance)))


def layer_transfer_losses(teacher_hidden, student_hidden, teacher_probs, student_probs, factors):
  """The four losses of one layer, each times its factor, as a tuple in FACTOR_NAMES order."""
  feature_map, attention, mean_factor, variance_factor = factors
  zero = torch.zeros(())
  mean = variance = zero
  if mean_factor or variance_factor:
    mean, variance = mean_variance_transfer(teacher_hidden, student_hidden)
  return (feature_map * feature_map_transfer(teacher_hidden, student_hidden) if feature_map else zero,
          attention * attention_transfer(teacher_probs, student_probs) if attention else zero,
          mean_factor * mean if mean_factor else zero,
          variance_factor * variance if variance_factor else zero)


class Distillation:
  """One progressive-transfer step: BertModel teacher (eval, no grad) + MobileBertModel student.

  The same computation as our warm-up step (bench_distillation.Ours): every layer's four transfer
  losses, each weighted by the stage gate (1 for the layer being trained, here stage 0, else 0),
  summed and divided by L; then gradient clipping to norm 1 and AdamW. Both models give hidden states
  and attention probabilities through output_hidden_states / output_attentions, which needs eager
  attention. The student runs without dropout, as ours does whenever a teacher is in the graph.
  """

  def __init__(self, student_fields, teacher_fields, seq, batch, factors, learning_rate, stage=0,
               threads=None):
    _torch_setup(threads)
    no_dropout = dict(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    self.teacher = hf_model(teacher_fields, "BertModel", attn_implementation="eager")
    self.teacher.eval().requires_grad_(False)
    self.student = hf_model(student_fields, "MobileBertModel", attn_implementation="eager",
                            **no_dropout).train()
    self.factors = tuple(factors)
    layers = student_fields["num_hidden_layers"]
    self.gates = [float(layer == stage) for layer in range(layers)]
    ids, mask, _ = compare.batch_of(student_fields["vocab_size"], batch, seq)
    self.inputs = dict(input_ids=_long(ids), attention_mask=_long(mask),
                       token_type_ids=torch.zeros_like(_long(ids)),
                       output_hidden_states=True, output_attentions=True)
    self.optimizer = torch.optim.AdamW(self.student.parameters(), lr=learning_rate,
                                       weight_decay=0.01, eps=1e-6)

  def losses(self):
    """Per-loss totals over the layers (FACTOR_NAMES order), gated and divided by L."""
    with torch.no_grad():
      teacher = self.teacher(**self.inputs)
    student = self.student(**self.inputs)
    totals = [torch.zeros(())] * 4
    for layer, gate in enumerate(self.gates):
      layer_losses = layer_transfer_losses(
          teacher.hidden_states[layer + 1], student.hidden_states[layer + 1],
          teacher.attentions[layer], student.attentions[layer], self.factors)
      totals = [t + gate * loss for t, loss in zip(totals, layer_losses)]
    return [t / len(self.gates) for t in totals]

  def step(self):
    sum(self.losses()).backward()
    torch.nn.utils.clip_grad_norm_(self.student.parameters(), 1.0)
    self.optimizer.step()
    self.optimizer.zero_grad()
