using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;
using static TaskMerge.Engine.IO.IOText;

namespace TaskMerge.Engine.Eval;

/// <summary>
/// RoBERTa's byte-level BPE (GPT-2 vocabulary files <c>vocab.json</c> + <c>merges.txt</c>) as HF's
/// tokenizer runs it: special tokens written in the text are split out first; the rest is
/// pre-tokenized with the GPT-2 regex (no prefix space), each piece's UTF-8 bytes are mapped to
/// GPT-2's printable byte alphabet, and Microsoft.ML.Tokenizers' <see cref="BpeTokenizer"/> applies
/// the ranked merges. Framing: <c>&lt;s&gt; A &lt;/s&gt;</c> and <c>&lt;s&gt; A &lt;/s&gt;&lt;/s&gt; B &lt;/s&gt;</c>;
/// truncation: the fast tokenizer's <c>longest_first</c>. .NET's regex sees UTF-16 code units, so
/// letters outside the BMP do not match <c>\p{L}</c> (Python's does); such text is rare in GLUE.
/// </summary>
public sealed class RobertaTokenizer
{
    private static readonly string[] SpecialNames = ["<s>", "</s>", "<pad>", "<unk>", "<mask>"];
    private static readonly Regex Pattern = new(@"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+", RegexOptions.Compiled);

    private readonly BpeTokenizer _bpe;
    private readonly Dictionary<string, int> _specials;
    private readonly Regex? _specialSplit;

    private RobertaTokenizer(BpeTokenizer bpe, Dictionary<string, int> specials)
    {
        _bpe = bpe;
        _specials = specials;
        BosId = specials.GetValueOrDefault("<s>", 0);
        EosId = specials.GetValueOrDefault("</s>", 2);
        PadId = specials.GetValueOrDefault("<pad>", 1);
        if (specials.Count > 0)
            _specialSplit = new Regex(string.Join("|", specials.Keys.OrderByDescending(k => k.Length).Select(k => k == "<mask>" ? @"\s*<mask>" : Regex.Escape(k))));
    }

    /// <summary>Id of <c>&lt;s&gt;</c> (0 in roberta-base).</summary>
    public int BosId { get; }

    /// <summary>Id of <c>&lt;/s&gt;</c> (2).</summary>
    public int EosId { get; }

    /// <summary>Id of <c>&lt;pad&gt;</c> (1).</summary>
    public int PadId { get; }

    /// <summary>Loads <c>vocab.json</c> and <c>merges.txt</c> from <paramref name="directory"/>.</summary>
    public static RobertaTokenizer Load(string directory)
    {
        string vocab = Path.Combine(directory, "vocab.json"), merges = Path.Combine(directory, "merges.txt");
        foreach (var f in new[] { vocab, merges })
            if (!File.Exists(f)) throw new BadInputException($"{P(directory)}: tokenizer file {Path.GetFileName(f)} not found (RoBERTa needs vocab.json and merges.txt)");
        Dictionary<string, int> ids;
        try
        {
            ids = JsonSerializer.Deserialize<Dictionary<string, int>>(ReadAllText(vocab, P(vocab)))
                  ?? throw new BadInputException($"{P(vocab)}: empty vocabulary");
        }
        catch (JsonException e)
        {
            throw new BadInputException($"{P(vocab)}: not a token → id JSON object: {OneLine(e.Message)}");
        }
        var specials = SpecialNames.Where(ids.ContainsKey).ToDictionary(s => s, s => ids[s]);
        try
        {
            var bpe = BpeTokenizer.Create(vocab, merges, preTokenizer: null, normalizer: null, specialTokens: null,
                unknownToken: ids.ContainsKey("<unk>") ? "<unk>" : null, continuingSubwordPrefix: null, endOfWordSuffix: null, fuseUnknownTokens: false);
            return new RobertaTokenizer(bpe, specials);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or FormatException or IOException or JsonException)
        {
            throw new BadInputException($"{P(directory)}: cannot build the BPE tokenizer from vocab.json/merges.txt: {OneLine(e.Message)}", e);
        }
    }

    /// <summary>The BPE ids of <paramref name="text"/>, without added framing (specials written in the text still map to their ids).</summary>
    public int[] EncodeContent(string text)
    {
        var ids = new List<int>();
        int at = 0;
        if (_specialSplit is not null)
            foreach (Match m in _specialSplit.Matches(text))
            {
                EncodePlain(text[at..m.Index], ids);
                ids.Add(_specials[m.Value.TrimStart()]);
                at = m.Index + m.Length;
            }
        EncodePlain(text[at..], ids);
        return [.. ids];
    }

    private void EncodePlain(string text, List<int> ids)
    {
        foreach (Match piece in Pattern.Matches(text))
            ids.AddRange(_bpe.EncodeToIds(ByteLevelAlphabet.Encode(piece.Value), considerPreTokenization: false, considerNormalization: false));
    }

    /// <summary>
    /// The ids of one example, framed and truncated to <paramref name="maxLength"/> tokens (specials
    /// included) as <c>tokenizer(a, b, max_length=L, truncation=True)</c> does with the fast tokenizer:
    /// longest_first keeps min(n1, ⌈budget/2⌉)-style splits, cutting each sequence from the right.
    /// </summary>
    public int[] Encode(string first, string? second, int maxLength)
    {
        var a = EncodeContent(first);
        if (second is null)
        {
            int keep = Math.Min(a.Length, Math.Max(0, maxLength - 2));
            return [BosId, .. a.AsSpan(0, keep), EosId];
        }
        var b = EncodeContent(second);
        var (na, nb) = LongestFirst(a.Length, b.Length, Math.Max(0, maxLength - 4));
        return [BosId, .. a.AsSpan(0, na), EosId, EosId, .. b.AsSpan(0, nb), EosId];
    }

    /// <summary>
    /// The kept lengths of a pair under tokenizers' <c>longest_first</c> (truncation.rs): with n1 ≤ n2,
    /// n2 ← max(n1, L − n1) (or n1 when n1 &gt; L); if n1 + n2 &gt; L then n1 ← L/2, n2 ← n1 + L mod 2.
    /// </summary>
    public static (int First, int Second) LongestFirst(int first, int second, int budget)
    {
        if (first + second <= budget) return (first, second);
        bool swapped = first > second;
        int n1 = swapped ? second : first, n2 = swapped ? first : second;
        n2 = n1 > budget ? n1 : Math.Max(n1, budget - n1);
        if (n1 + n2 > budget)
        {
            n1 = budget / 2;
            n2 = n1 + budget % 2;
        }
        int keep2 = swapped ? n1 : n2, keep1 = swapped ? n2 : n1;
        return (Math.Min(first, keep1), Math.Min(second, keep2));
    }
}
