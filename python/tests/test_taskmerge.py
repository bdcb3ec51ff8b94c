"""Tests of the Python binding, run from the repository root by .ci/run:
    TASKMERGE_CLI_REFERENCE=CLI_TIES_OUT/model.safetensors python3 -m unittest discover -s python/tests
CLI_TIES_OUT is `taskmerge merge examples/ties.yml` run by the CLI. The library comes from TASKMERGE_LIBRARY
or from the installed wheel (the package's lib/ folder)."""
import array
import os
import re
import shutil
import tempfile
import threading
import unittest

import taskmerge

try:
    import numpy
except ImportError:
    numpy = None

REFERENCE = os.environ.get("TASKMERGE_CLI_REFERENCE")


def _bytes(path):
    with open(path, "rb") as f:
        return f.read()


class Scratch(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="taskmerge-py-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def out(self, name):
        return os.path.join(self.dir, name)


class MergeTests(Scratch):
    def test_merge_equals_the_cli_bytes(self):
        self.assertTrue(REFERENCE and os.path.exists(REFERENCE), "TASKMERGE_CLI_REFERENCE must name the CLI's output")
        out = self.out("ties")
        taskmerge.merge("examples/ties.yml", out, {"device": "cpu"})
        self.assertEqual(_bytes(os.path.join(out, "model.safetensors")), _bytes(REFERENCE))

    def test_progress_sees_every_tensor_once_in_order(self):
        events = []
        taskmerge.merge("examples/ties.yml", self.out("progress"),
                        progress=lambda kind, stage, text, done, total: events.append((kind, stage, text, done, total)))
        stages = [e for e in events if e[0] == "stage" and e[1] == "merge"]
        items = [e for e in events if e[0] == "item" and e[1] == "merge"]
        self.assertEqual(len(stages), 1)
        self.assertEqual(stages[0][4], 41)
        self.assertEqual([e[3] for e in items], list(range(1, 42)))
        self.assertEqual(items[0][2], "vision_model.embeddings.class_embedding")

    def test_an_exception_in_progress_stops_the_merge_and_is_raised(self):
        def fail(kind, stage, text, done, total):
            if kind == "item":
                raise KeyError("stop here")
        out = self.out("raising")
        with self.assertRaises(KeyError):
            taskmerge.merge("examples/ties.yml", out, progress=fail)
        self.assertFalse(os.path.exists(os.path.join(out, "model.safetensors")))

    def test_missing_config_is_bad_input_naming_the_file(self):
        with self.assertRaises(taskmerge.BadInputError) as caught:
            taskmerge.merge("examples/no-such.yml", self.out("bad"))
        self.assertEqual(caught.exception.status, 2)
        self.assertIn("examples/no-such.yml", caught.exception.message)
        self.assertIn("not found", str(caught.exception))
        self.assertFalse(os.path.exists(self.out("bad")))

    def test_unknown_option_is_bad_input(self):
        with self.assertRaises(taskmerge.BadInputError) as caught:
            taskmerge.merge("examples/ties.yml", self.out("bad-option"), {"devcie": "cpu"})
        self.assertIn("devcie", caught.exception.message)

    def test_cancel_from_another_thread_raises_cancelled_and_leaves_no_model(self):
        first_item, released = threading.Event(), threading.Event()

        def hold(kind, stage, text, done, total):
            if kind == "item" and not first_item.is_set():
                first_item.set()
                released.wait(60)

        out = self.out("cancel")
        result = {}

        def run():
            try:
                taskmerge.merge("examples/ties.yml", out, progress=hold)
                result["error"] = None
            except taskmerge.TaskMergeError as e:
                result["error"] = e

        t = threading.Thread(target=run)
        t.start()
        self.assertTrue(first_item.wait(120), "the merge never reported a tensor")
        stopped = taskmerge.cancel()
        released.set()
        t.join(120)
        self.assertEqual(stopped, 1)
        self.assertIsInstance(result.get("error"), taskmerge.CancelledError)
        self.assertEqual(result["error"].status, 3)
        left = [n for n in os.listdir(out) if "tmp" in n or n.endswith(".safetensors")] if os.path.isdir(out) else []
        self.assertEqual(left, [])
        self.assertEqual(taskmerge.cancel(), 0)

    def test_inspect_lists_the_tensors(self):
        info = taskmerge.inspect("examples/zoo/base")
        self.assertEqual(info["tensor_count"], 41)
        proj = [t for t in info["tensors"] if t["name"] == "visual_projection.weight"][0]
        self.assertEqual((proj["dtype"], proj["shape"]), ("F32", [32, 64]))
        with self.assertRaises(taskmerge.BadInputError) as caught:
            taskmerge.inspect("examples/zoo/nothing")
        self.assertIn("examples/zoo/nothing", caught.exception.message)


class MergeTensorsTests(unittest.TestCase):
    base = [0.5, -1.0, 2.0, 0.0, 1.5, -0.25]
    experts = [[1.0, -2.0, 2.5, 1.0, 1.0, 0.0], [0.0, 0.0, 1.0, -1.0, 3.5, -1.25]]
    weights = [1.0, 0.5]
    lam = 0.7

    def expected(self):
        # task arithmetic by hand: θ₀ + λ Σ wᵢ (θᵢ − θ₀)
        return [b + self.lam * sum(w * (e[i] - b) for w, e in zip(self.weights, self.experts))
                for i, b in enumerate(self.base)]

    def params(self):
        return {"lambda": self.lam, "models": [{"weight": w} for w in self.weights], "device": "cpu"}

    def test_task_arithmetic_from_lists_is_the_hand_computed_sum(self):
        out = taskmerge.merge_tensors("task_arithmetic", self.params(), self.base, self.experts, (2, 3))
        self.assertIsInstance(out, array.array)
        for got, want in zip(out, self.expected()):
            self.assertAlmostEqual(got, want, places=6)

    def test_float32_buffers_are_read_in_place_and_out_is_filled(self):
        base = array.array("f", self.base)
        experts = [array.array("f", e) for e in self.experts]
        out = array.array("f", [0.0] * 6)
        result = taskmerge.merge_tensors("task_arithmetic", self.params(), base, experts, [6], out=out)
        self.assertIs(result, out)
        for got, want in zip(out, self.expected()):
            self.assertAlmostEqual(got, want, places=6)

    def test_linear_without_base_is_the_normalized_weighted_mean(self):
        out = taskmerge.merge_tensors("linear", {"models": [{"weight": 3}, {"weight": 1}]}, None,
                                      [[1.0, -2.0, 4.0], [3.0, 2.0, -4.0]], [3])
        for got, want in zip(out, [1.5, -1.0, 2.0]):
            self.assertAlmostEqual(got, want, places=6)

    def test_bad_arguments_are_bad_input(self):
        with self.assertRaises(taskmerge.BadInputError) as caught:
            taskmerge.merge_tensors("tie", None, [0.0] * 4, [[1.0] * 4], (2, 2))
        self.assertIn("unknown merge_method 'tie'", caught.exception.message)
        with self.assertRaises(taskmerge.BadInputError) as caught:
            taskmerge.merge_tensors("ties", {"densty": 0.5}, [0.0] * 4, [[1.0] * 4], (2, 2))
        self.assertIn("densty", caught.exception.message)
        with self.assertRaises(taskmerge.BadInputError) as caught:
            taskmerge.merge_tensors("ties", None, [0.0] * 4, [[1.0] * 5], (2, 2))
        self.assertIn("experts[0]", caught.exception.message)

    @unittest.skipIf(numpy is None, "numpy is not installed: the numpy path is not tested by this interpreter")
    def test_numpy_arrays_in_give_a_numpy_array_of_the_shape(self):
        base = numpy.array(self.base, dtype=numpy.float32).reshape(2, 3)
        experts = [numpy.array(e, dtype=numpy.float32).reshape(2, 3) for e in self.experts]
        out = taskmerge.merge_tensors("task_arithmetic", self.params(), base, experts, (2, 3))
        self.assertEqual((out.shape, out.dtype), ((2, 3), numpy.float32))
        numpy.testing.assert_allclose(out.ravel(), self.expected(), rtol=0, atol=1e-6)
        into = numpy.zeros((2, 3), dtype=numpy.float32)
        self.assertIs(taskmerge.merge_tensors("task_arithmetic", self.params(), base, experts, (2, 3), out=into), into)
        numpy.testing.assert_allclose(into.ravel(), self.expected(), rtol=0, atol=1e-6)


class ReadmeSnippetTests(Scratch):
    def test_the_readme_python_snippet_runs(self):
        with open("README.md", encoding="utf-8") as f:
            readme = f.read()
        m = re.search(r"<!-- snippet:python -->\s*```python\n(.*?)```", readme, re.S)
        self.assertIsNotNone(m, "README.md has no <!-- snippet:python --> block")
        code = m.group(1).replace("out/ties-python", self.out("readme"))
        exec(compile(code, "README.md:python", "exec"), {})
        self.assertTrue(os.path.exists(self.out("readme/model.safetensors")))
        if REFERENCE:
            self.assertEqual(_bytes(self.out("readme/model.safetensors")), _bytes(REFERENCE))


if __name__ == "__main__":
    unittest.main()
