using TaskMerge.Engine.IO;
using TaskMerge.Engine.Models;
using TaskMerge.Engine.Tests.Models;
using TaskMerge.Engine.Training;
using Xunit;

namespace TaskMerge.Engine.Tests.Training;

/// <summary><see cref="ClipTrainingLayout"/>: training (HF) names ↔ a checkpoint's HF or open_clip tensors, checked against the test's own open_clip conversion.</summary>
public sealed class ClipTrainingLayoutTests
{
    private static readonly TinyModels.ClipShape Shape = new(Layers: 2);

    [Theory]
    [InlineData("visual.")]
    [InlineData("model.visual.")]
    public void Open_clip_tensors_map_to_the_training_names_and_back(string prefix)
    {
        using var dir = new IO.TempDir();
        var hf = TinyModels.ClipHf(Shape, seed: 3);
        var oc = TinyModels.ToOpenClip(hf, Shape, prefix);
        oc.WriteModel(dir.Path);
        using var source = ModelSource.Open(dir.Path);
        var layout = ClipTrainingLayout.Create(ClipNames.Detect(source), RiTrainerTests.Config(Shape));
        Assert.Equal(ClipWeightLayout.OpenClip, layout.Layout);
        Assert.Equal(oc.Names.Order(), layout.CheckpointTensors.Select(t => t.Name).Order());
        foreach (var (name, shape) in layout.CheckpointTensors) Assert.Equal(oc.ShapeOf(name), shape);

        var training = layout.ToTraining(source.ReadFloat32);
        Assert.Equal(hf.Names.Order(), training.Keys.Order());
        foreach (var name in hf.Names) Assert.Equal(hf[name], training[name]);

        var back = layout.FromTraining(training);
        Assert.Equal(oc.Names.Order(), back.Keys.Order());
        foreach (var name in oc.Names) Assert.Equal(oc[name], back[name]);
    }

    [Fact]
    public void Hf_tensors_map_one_to_one()
    {
        using var dir = new IO.TempDir();
        var hf = TinyModels.ClipHf(Shape, seed: 4);
        hf.WriteModel(dir.Path);
        using var source = ModelSource.Open(dir.Path);
        var layout = ClipTrainingLayout.Create(ClipNames.Detect(source), RiTrainerTests.Config(Shape));
        Assert.Equal(ClipWeightLayout.HuggingFace, layout.Layout);
        var training = layout.ToTraining(source.ReadFloat32);
        foreach (var name in hf.Names) Assert.Equal(hf[name], training[name]);
        var back = layout.FromTraining(training);
        foreach (var name in hf.Names) Assert.Equal(hf[name], back[name]);
    }
}
