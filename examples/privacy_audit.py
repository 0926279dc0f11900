"""Privacy report and save/load
=============================

Privacy report and save/load of a fitted synthesizer.

Run: python examples/privacy_audit.py
"""
import json
import tempfile

from nhssynth import DPVAESynthesizer
from nhssynth.datasets import load_example

df, metadata = load_example(return_metadata=True)
cols = ["age", "sex", "dzgroup", "income", "charges", "death", "edu"]
synth = DPVAESynthesizer(epsilon=1.0, metadata=metadata.select(cols), max_epochs=5,
                         random_state=0).fit(df[cols])

report = synth.privacy_report()
print(report.statement)
for spend in report.spends:
    print(f"  {spend.stage:<36} epsilon alone = {spend.epsilon:.3f}   ({spend.mechanism})")
print(f"  total (composed, {report.accountant}): epsilon = {report.epsilon:.3f}, "
      f"delta = {report.delta:.1e}")
assert report.epsilon <= 1.0

with tempfile.TemporaryDirectory() as tmp:
    synth.save(tmp)
    again = DPVAESynthesizer.load(tmp)
    assert again.sample(100, random_state=0).equals(synth.sample(100, random_state=0))
    print(json.dumps({"saved_files": ["model.json", "weights.pt"]}))
