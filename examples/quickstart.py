"""Quick start
===========

DP synthesis of the bundled SUPPORT2 table in a few lines.

Run: python examples/quickstart.py
"""
from nhssynth import DPVAESynthesizer
from nhssynth.datasets import load_example
from nhssynth.metrics import evaluate

df, metadata = load_example(return_metadata=True)  # categories declared from the data dictionary
train, holdout = df.iloc[:7000], df.iloc[7000:]

synth = DPVAESynthesizer(epsilon=3.0, metadata=metadata, max_epochs=10, random_state=0).fit(train)
fake = synth.sample(2000, random_state=1)

print(synth.privacy_report().statement)
print(fake.head())
assert list(fake.columns) == list(df.columns) and (fake.dtypes == df.dtypes).all()

table, summary = evaluate(synth, train, holdout=holdout, metadata=metadata, target="hospdead")
print({k: round(v, 3) for k, v in summary.items() if isinstance(v, float)})
