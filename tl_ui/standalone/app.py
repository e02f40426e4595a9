"""A try-it page for this model (made by Transfer Lab): `python app.py`. ONNX Runtime answers; no torch.
The first named API endpoint, /classify, takes the input (an image file, or a text) as its first argument and
returns {"probabilities": {class: p}, and where the run has them "prediction_set", "set_level", "decision"} and the
probabilities as a label."""
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
    classes = predict_onnx.CONFIG["classes"]
    scores = {c: float(p) for c, p in sorted(zip(classes, row), key=lambda kv: -kv[1])}
    answer = {"probabilities": scores}
    if INFO.get("prediction_set"):   # split conformal: the classes with 1 - p <= qhat (the most likely alone if none)
        chosen = [c for c, p in scores.items() if 1.0 - p <= INFO["prediction_set"]["qhat"]] or [next(iter(scores))]
        answer.update(prediction_set=chosen, set_level=INFO["prediction_set"]["level"])
    if INFO.get("operating_point"):
        point = INFO["operating_point"]
        answer["decision"] = "positive" if scores[point["positive_class"]] >= point["threshold"] else "negative"
    return answer, scores


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
