using TaskMerge.Engine.Models;
using TaskMerge.Engine.Tests.Models;
using TaskMerge.Engine.Training;
using Xunit;

namespace TaskMerge.Engine.Tests.Training;

/// <summary>Teacher-embedding caching (<see cref="RiTeacherCache"/>): same bytes, fewer teacher forwards.</summary>
public sealed class RiTeacherCacheTests
{
    private static readonly TaskMerge.Engine.Tensors.Cpu.CpuBackend Cpu = new(2);

    private static readonly TinyModels.ClipShape Shape = new(Layers: 1);

    private static void AssertSame(RiResult a, RiResult b)
    {
        Assert.Equal(a.Loss, b.Loss);
        Assert.Equal(a.GradNorm, b.GradNorm);
        foreach (var (name, v) in a.Adapted) Assert.Equal(v, b.Adapted[name]);
    }

    [Theory]
    [InlineData(8, 4)]   // passes of whole batches
    [InlineData(10, 4)]  // batches that span passes
    public void Cached_and_uncached_runs_give_the_same_bytes_with_fewer_forwards(int count, int batch)
    {
        var config = RiTrainerTests.Config(Shape);
        var (pre, experts, heads) = RiTrainerTests.Zoo(Shape);
        using var aux = RiAuxImages.InMemory(ClipVisionParityTests.Pixels(count, Shape, 8), count);
        var o = new RiOptions { LearningRate = 1e-3f, Steps = 8, BatchSize = batch, Seed = 6, Threads = 2 };
        var uncached = RiTrainer.Adapt(Cpu, config, pre, experts[0], heads, 0, aux, o with { CacheTeachers = false });
        var cached = RiTrainer.Adapt(Cpu, config, pre, experts[0], heads, 0, aux, o);
        AssertSame(uncached, cached);
        Assert.Equal(2L * o.Steps * batch, uncached.TeacherImagesForwarded);
        Assert.True(cached.TeacherImagesForwarded < uncached.TeacherImagesForwarded / 2,
            $"{cached.TeacherImagesForwarded} teacher images forwarded with the cache, {uncached.TeacherImagesForwarded} without");
        // Whole-batch passes: each image goes through each teacher once.
        if (count % batch == 0) Assert.Equal(2L * count, cached.TeacherImagesForwarded);
    }

    [Fact]
    public void A_shared_pretrained_cache_spares_later_experts_the_pretrained_forward()
    {
        var config = RiTrainerTests.Config(Shape);
        var (pre, experts, heads) = RiTrainerTests.Zoo(Shape);
        const int count = 8;
        using var aux = RiAuxImages.InMemory(ClipVisionParityTests.Pixels(count, Shape, 9), count);
        var o = new RiOptions { LearningRate = 1e-3f, Steps = 4, BatchSize = 4, Seed = 1, Threads = 2 };
        var shared = new RiTeacherCache(count, Shape.Projection);
        var first = RiTrainer.Adapt(Cpu, config, pre, experts[0], heads, 0, aux, o, new RiRunHooks { PretrainedCache = shared });
        Assert.Equal(count, shared.ImagesForwarded);
        var second = RiTrainer.Adapt(Cpu, config, pre, experts[1], heads, 1, aux, o, new RiRunHooks { PretrainedCache = shared });
        Assert.Equal(count, shared.ImagesForwarded);
        Assert.Equal(count, second.TeacherImagesForwarded);  // the expert teacher only
        AssertSame(RiTrainer.Adapt(Cpu, config, pre, experts[1], heads, 1, aux, o with { CacheTeachers = false }), second);
        Assert.Equal(2L * count, first.TeacherImagesForwarded);
    }

    [Fact]
    public void The_cache_forwards_a_batch_with_any_unseen_image_whole()
    {
        var cache = new RiTeacherCache(4, 2);
        var calls = new List<int>();
        float[] Forward(int[] idx)
        {
            calls.Add(idx.Length);
            return [.. idx.SelectMany(i => new[] { i, 10f * i })];
        }
        int[] a = [0, 1], b = [1, 2], c = [2, 0];
        Assert.Equal([0f, 0f, 1f, 10f], cache.Embeddings(a, () => Forward(a)));
        Assert.Equal([1f, 10f, 2f, 20f], cache.Embeddings(b, () => Forward(b)));
        Assert.Equal([2f, 20f, 0f, 0f], cache.Embeddings(c, () => throw new InvalidOperationException("all cached")));
        Assert.Equal([2, 2], calls);
        Assert.Equal(4, cache.ImagesForwarded);
        var off = new RiTeacherCache(4, 2, enabled: false);
        off.Embeddings(a, () => Forward(a));
        off.Embeddings(a, () => Forward(a));
        Assert.Equal(4, off.ImagesForwarded);
    }
}
