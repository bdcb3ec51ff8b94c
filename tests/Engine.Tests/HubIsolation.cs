using System.Runtime.CompilerServices;

namespace TaskMerge.Engine.Tests;

/// <summary>Keeps every test off the network and out of the user's Hugging Face cache: offline, with a cache of its own.</summary>
internal static class HubIsolation
{
    /// <summary>The hub cache the tests' process uses (<c>HF_HUB_CACHE</c>).</summary>
    public static string Cache { get; } = Path.Combine(Path.GetTempPath(), $"taskmerge-test-hf-cache-{Environment.ProcessId}");

    [ModuleInitializer]
    internal static void Init()
    {
        Directory.CreateDirectory(Cache);
        Environment.SetEnvironmentVariable("HF_HUB_CACHE", Cache);
        Environment.SetEnvironmentVariable("HF_HUB_OFFLINE", "1");
        Environment.SetEnvironmentVariable("HF_TOKEN", null);
        Environment.SetEnvironmentVariable("HF_ENDPOINT", "http://127.0.0.1:9");
    }
}
