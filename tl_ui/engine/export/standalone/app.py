"""A try-it page for this model (made by Transfer Lab): `python app.py`. ONNX Runtime answers; no torch.
The first named API endpoint, /classify, takes the input (an image file, or a text) as its first argument and
returns {"probabilities": {class: p}} and the same as a label."""
import json
from pathlib import Path

import gradio as gr

import predict_onnx

HERE = Path(__file__).resolve().parent
INFO = json.loads((HERE / "space.json").read_text(encoding="utf-8"))
SESSION = predict_onnx.session()
IMAGE = INFO["modality"] == "image"


def classify(item):
    if not item or (not IMAGE and not str(item).strip()):
        raise gr.Error("Upload an image first." if IMAGE else "Type some text first.")
    row = predict_onnx.probabilities([item], SESSION)[0]
    scores = {c: float(p) for c, p in sorted(zip(predict_onnx.CONFIG["classes"], row), key=lambda kv: -kv[1])}
    return {"probabilities": scores}, scores


with gr.Blocks(title=INFO["title"]) as demo:
    gr.Markdown(f"# {INFO['title']}\n\nFine-tuned from {INFO['base_model']} with Transfer Lab. "
                f"Classes: {', '.join(INFO['classes'])}.")
    gr.Markdown("## Intended use and limits\n\n" + INFO["intended_use"])
    if INFO.get("how_well"):
        gr.Markdown("## How well it works\n\n" + INFO["how_well"])
    box = gr.Image(type="filepath", label="Image") if IMAGE else gr.Textbox(label="Text", lines=4)
    button = gr.Button("Classify", variant="primary")
    label = gr.Label(label="Probabilities (calibrated)")
    raw = gr.JSON(label="As JSON")
    button.click(classify, inputs=box, outputs=[raw, label], api_name="classify")

if __name__ == "__main__":
    demo.launch()
