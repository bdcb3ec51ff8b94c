using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using YamlDotNet.RepresentationModel;

namespace TaskMerge.Engine.Config;

/// <summary>
/// Loads a config's YAML within fixed bounds, checked on the parser's event stream before any node
/// tree is built (so neither deep nesting nor alias bombs can exhaust the stack or memory): the text
/// length, the nesting depth and the number of nodes with every alias expanded. A file holding more
/// than one document is refused (mergekit's <c>mergekit-yaml</c> reads one document too).
/// </summary>
public static class BoundedYaml
{
    /// <summary>Largest config text accepted, in characters (mergekit configs are a few KB).</summary>
    public const int MaxChars = 4 << 20;

    /// <summary>Deepest nesting of mappings and sequences accepted, aliases expanded.</summary>
    public const int MaxDepth = 64;

    /// <summary>Most nodes (scalars, mappings, sequences) the document may hold with every alias expanded.</summary>
    public const long MaxExpandedNodes = 100_000;

    private sealed class Frame(string? anchor, int line)
    {
        public string? Anchor { get; } = anchor;
        public int Line { get; } = line;
        public long Nodes { get; set; } = 1;
        public int DepthBelow { get; set; }
    }

    /// <summary>Parses <paramref name="text"/> into its single document; every problem is a <see cref="BadInputException"/> naming <paramref name="path"/> and the line.</summary>
    public static YamlDocument? Load(string text, string path)
    {
        if (text.Length > MaxChars)
            throw new BadInputException($"{path}: config is {text.Length} characters; at most {MaxChars} are accepted");
        Check(text, path);
        var stream = new YamlStream();
        try { stream.Load(new StringReader(text)); }
        catch (YamlException e) { throw Invalid(path, e); }
        catch (InvalidOperationException e) { throw new BadInputException($"{path}: invalid YAML: {OneLine(e.Message)}"); }
        return stream.Documents.Count == 0 ? null : stream.Documents[0];
    }

    private static void Check(string text, string path)
    {
        var parser = new Parser(new StringReader(text));
        var stack = new Stack<Frame>();
        var anchors = new Dictionary<string, (long Nodes, int Depth)>(StringComparer.Ordinal);
        long rootNodes = 0;
        int documents = 0;
        try
        {
            while (parser.MoveNext())
            {
                var ev = parser.Current!;
                int line = (int)ev.Start.Line;
                switch (ev)
                {
                    case DocumentStart:
                        if (++documents > 1)
                            throw new BadInputException($"{path}:{line}: a second YAML document; multi-document configs (mergekit-multi) are not supported, put each merge in its own file");
                        anchors.Clear();
                        break;
                    case MappingStart m:
                        Push(stack, m.Anchor.IsEmpty ? null : m.Anchor.Value, line, path);
                        break;
                    case SequenceStart q:
                        Push(stack, q.Anchor.IsEmpty ? null : q.Anchor.Value, line, path);
                        break;
                    case MappingEnd or SequenceEnd:
                    {
                        var f = stack.Pop();
                        if (f.Anchor is not null) anchors[f.Anchor] = (f.Nodes, f.DepthBelow + 1);
                        Add(stack, ref rootNodes, f.Nodes, f.DepthBelow + 1, line, path);
                        break;
                    }
                    case Scalar s:
                        if (!s.Anchor.IsEmpty) anchors[s.Anchor.Value] = (1, 0);
                        Add(stack, ref rootNodes, 1, 0, line, path);
                        break;
                    case AnchorAlias a:
                        if (!anchors.TryGetValue(a.Value.Value, out var size))
                            throw new BadInputException($"{path}:{line}: invalid YAML: alias *{a.Value.Value} names no anchor defined before it");
                        Add(stack, ref rootNodes, size.Nodes, size.Depth, line, path);
                        break;
                }
            }
        }
        catch (YamlException e) { throw Invalid(path, e); }
        catch (InvalidOperationException e)
        {
            int line = (int)(parser.Current?.End.Line ?? 0);
            throw new BadInputException($"{path}:{line}: invalid YAML: {OneLine(e.Message)}");
        }
    }

    private static void Push(Stack<Frame> stack, string? anchor, int line, string path)
    {
        if (stack.Count + 1 > MaxDepth)
            throw new BadInputException($"{path}:{line}: YAML nested deeper than {MaxDepth} levels");
        stack.Push(new Frame(anchor, line));
    }

    /// <summary>Adds a finished child of <paramref name="nodes"/> nodes and <paramref name="depth"/> levels to the open node (or the root).</summary>
    private static void Add(Stack<Frame> stack, ref long rootNodes, long nodes, int depth, int line, string path)
    {
        if (stack.Count + depth > MaxDepth)
            throw new BadInputException($"{path}:{line}: YAML nested deeper than {MaxDepth} levels (aliases expanded)");
        if (stack.TryPeek(out var parent))
        {
            parent.Nodes += nodes;
            parent.DepthBelow = Math.Max(parent.DepthBelow, depth);
            if (parent.Nodes > MaxExpandedNodes) throw TooMany(path, line);
        }
        else
        {
            rootNodes += nodes;
            if (rootNodes > MaxExpandedNodes) throw TooMany(path, line);
        }
    }

    private static BadInputException TooMany(string path, int line) =>
        new($"{path}:{line}: YAML expands to more than {MaxExpandedNodes} nodes (aliases expanded); a merge config is far smaller");

    private static BadInputException Invalid(string path, YamlException e) =>
        new($"{path}:{e.Start.Line}: invalid YAML: {OneLine(e.InnerException?.Message ?? e.Message)}");

    private static string OneLine(string s) => s.ReplaceLineEndings(" ");
}
