namespace TaskMerge.Engine.Methods;

/// <summary>The one list of merge methods, by <c>merge_method</c> name.</summary>
public static class MethodRegistry
{
    private static readonly Func<IMergeMethod>[] Factories =
    [
        () => new LinearMethod(),
        () => new TaskArithmeticMethod(),
        () => new TiesMethod(),
        () => new DareLinearMethod(),
        () => new DareTiesMethod(),
        () => new BreadcrumbsMethod(),
        () => new BreadcrumbsTiesMethod(),
        () => new ModelStockMethod(),
        () => new DellaMethod(),
        () => new DellaLinearMethod(),
        () => new AwdMethod(),
        () => new TsvMergeMethod(),
        () => new IsoCMethod(),
        () => new IsoCtsMethod(),
        () => new WudiMethod(),
        () => new RiMethod(),
        () => new SlerpMethod(),
        () => new NuSlerpMethod(),
        () => new MultiSlerpMethod(),
        () => new KarcherMethod(),
        () => new NearSwapMethod(),
        () => new RamMethod(),
        () => new RamPlusTlMethod(),
        () => new SceMethod(),
        () => new ArceeFusionMethod(),
        () => new PassthroughMethod(),
    ];

    private static readonly Dictionary<string, Func<IMergeMethod>> ByName =
        Factories.ToDictionary(f => f().Name, StringComparer.Ordinal);

    /// <summary>All method names in registration order.</summary>
    public static IReadOnlyList<string> Names { get; } = Factories.Select(f => f().Name).ToArray();

    /// <summary>Creates the method named <paramref name="name"/>; a <see cref="BadInputException"/> lists the known names otherwise.</summary>
    public static IMergeMethod Create(string name) =>
        ByName.TryGetValue(name, out var f) ? f()
            : throw new BadInputException($"unknown merge_method '{name}' (known: {string.Join(", ", Names)})");
}
