#!/usr/bin/env python3
"""Renders chat templates with Python jinja2, configured as Hugging Face transformers'
apply_chat_template configures it, and writes the expected outputs for ChatTemplateTests.

    python3 make_chat_fixtures.py [--models DIR] [--corpus DIR]

Needs `jinja2` and `gguf` (pip install jinja2 gguf). Writes chat_templates.json beside itself.

Environment, as in transformers' _compile_jinja_template: ImmutableSandboxedEnvironment with
trim_blocks=True, lstrip_blocks=True, the loopcontrols extension, a raise_exception global and
a tojson filter that is json.dumps(ensure_ascii=False, ...). `strftime_now` is left out so the
expected output does not depend on the day it was generated; Strata leaves it out too.
Like apply_chat_template, every render passes tools=None and documents=None unless a case
provides them.
"""

import argparse
import json
import os
import sys

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_MODELS = os.environ.get("STRATA_MODELS", os.path.expanduser("~/.cache/strata/models"))
DEFAULT_CORPUS = "/tmp/ext/llama_cpp_python-0.3.36/vendor/llama.cpp/models/templates"

# (fixture name, GGUF file) for the models Strata ships with.
MODEL_TEMPLATES = [
    ("smollm2-135m", "smollm2-135m.gguf"),
    ("qwen2.5-coder-0.5b", "qwen2.5-coder-0.5b.gguf"),
]

# Common templates from llama.cpp's collection (models/templates, MIT), used as a robustness
# corpus: (fixture name, file, bos, eos).
CORPUS_TEMPLATES = [
    ("llama-3.1-8b-instruct", "meta-llama-Llama-3.1-8B-Instruct.jinja", "<|begin_of_text|>", "<|eot_id|>"),
    ("llama-3.2-3b-instruct", "meta-llama-Llama-3.2-3B-Instruct.jinja", "<|begin_of_text|>", "<|eot_id|>"),
    ("qwen2.5-7b-instruct", "Qwen-Qwen2.5-7B-Instruct.jinja", "", "<|im_end|>"),
    ("qwen3-0.6b", "Qwen-Qwen3-0.6B.jinja", "", "<|im_end|>"),
    ("mistral-nemo-instruct-2407", "mistralai-Mistral-Nemo-Instruct-2407.jinja", "<s>", "</s>"),
    ("gemma-2-2b-it", "google-gemma-2-2b-it.jinja", "<bos>", "<eos>"),
    ("phi-3.5-mini-instruct", "microsoft-Phi-3.5-mini-instruct.jinja", "<s>", "<|endoftext|>"),
    ("smollm3-3b", "HuggingFaceTB-SmolLM3-3B.jinja", "", "<|im_end|>"),
    ("deepseek-r1-distill-qwen-32b", "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja",
     "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"),
    ("hermes-2-pro-llama-3-8b-tool-use", "NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use.jinja",
     "<|begin_of_text|>", "<|im_end|>"),
    ("granite-3.3-2b-instruct", "ibm-granite-granite-3.3-2B-Instruct.jinja", "", "<|end_of_text|>"),
    ("qwen3-coder", "Qwen3-Coder.jinja", "", "<|im_end|>"),
    ("glm-4.6", "GLM-4.6.jinja", "", "<|user|>"),
    ("deepseek-v3.1", "deepseek-ai-DeepSeek-V3.1.jinja", "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"),
    ("qwq-32b", "Qwen-QwQ-32B.jinja", "", "<|im_end|>"),
    ("kimi-k2", "moonshotai-Kimi-K2.jinja", "", "<|im_end|>"),
]

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather — «quoted», \"escaped\"",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name, e.g. Zürich"},
                "days": {"type": "integer", "description": "Forecast length", "enum": [1, 3, 7]},
                "metric": {"type": "boolean", "default": True},
                "ratio": {"type": "number", "default": 0.5},
            },
            "required": ["city"],
        },
    },
}

CONVERSATIONS = [
    ("single-user", [{"role": "user", "content": "Hello!"}], {}),
    ("system-user", [
        {"role": "system", "content": "You are a terse assistant."},
        {"role": "user", "content": "What is 2+2?"},
    ], {}),
    ("multi-turn", [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "Tell me a joke."},
    ], {}),
    ("unicode-newlines", [
        {"role": "system", "content": "Réponds en français. 🙂\n\nTwo paragraphs."},
        {"role": "user", "content": "Ünïcödé: 日本語\nline two\ttab \"quotes\" 'single' \\backslash {{ not a tag }}"},
        {"role": "assistant", "content": "  padded answer  \n\n"},
        {"role": "user", "content": "e\u0301 combining, 👩‍👩‍👧 family, \u2028 separator, end"},
    ], {}),
    ("tool-results", [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": "Let me check."},
        {"role": "tool", "content": "{\"temperature\": 21}"},
        {"role": "tool", "content": "{\"humidity\": 40}"},
        {"role": "user", "content": "Thanks"},
    ], {}),
    ("with-tools", [
        {"role": "system", "content": "Use tools when needed."},
        {"role": "user", "content": "Weather in Zürich for 3 days?"},
    ], {"tools": [WEATHER_TOOL]}),
    ("thinking-disabled", [
        {"role": "user", "content": "Quick answer: capital of Italy?"},
    ], {"enable_thinking": False}),
]

# Small templates that pin down interpreter details against jinja2 itself.
SNIPPET_CONTEXT = {
    "items": [3, 1, 2],
    "words": ["Banana", "apple", "cherry"],
    "people": [{"name": "Ann", "age": 31, "admin": True}, {"name": "bob", "age": 25, "admin": False}],
    "mapping": {"b": 1, "a": [1.5, None, True, "x'y"], "c": {"nested": "d\"q"}},
    "text": "  Hello, World!  ",
    "empty": "",
    "number": 7,
    "ratio": 0.1,
    "big": 1e16,
    "small": 0.00001,
    "flag": False,
    "nothing": None,
}

SNIPPETS = [
    ("whitespace-control", "a  {{- ' b ' -}}  c\n  {%- if true %} d {% endif -%}\n e"),
    ("trim-and-lstrip-blocks", "x\n    {% if true %}\n    y\n    {% endif %}\nz\n  {# note #}\nw"),
    ("plus-disables-lstrip", "x\n    {%+ if true %}y{% endif +%}\nz"),
    ("comment-whitespace", "a\n  {#- c -#}  \n b {# d #}\ne"),
    ("trailing-newline", "line\n"),
    ("crlf-source", "a\r\n{% if true %}\r\nb\r\n{% endif %}\r\nc"),
    ("output-repr", "{{ mapping }}|{{ items }}|{{ nothing }}|{{ flag }}|{{ ratio }}|{{ big }}|{{ small }}"
                    "|{{ 10 / 4 }}|{{ 4 / 2 }}|{{ 7 // 2 }}|{{ -7 // 2 }}|{{ -7 % 3 }}|{{ 2 ** 10 }}|{{ 1e3 }}"),
    ("undefined", "[{{ missing }}][{{ missing | length }}][{{ missing is defined }}][{{ mapping.zzz is none }}]"
                  "[{% for x in missing %}{{ x }}{% else %}empty{% endfor %}][{{ missing ~ 'cat' }}]"
                  "[{{ missing | default('dflt') }}][{{ nothing | default('dflt') }}][{{ empty | default('e', true) }}]"),
    ("loop-variables", "{% for x in items %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.first }}"
                       "{{ loop.last }}{{ loop.length }}{{ loop.previtem }}{{ loop.nextitem }};{% endfor %}"),
    ("loop-filter-break", "{% for x in items if x > 1 %}{{ x }}{{ loop.last }}{% endfor %}|"
                          "{% for x in items %}{% if x == 1 %}{% continue %}{% endif %}{% if x == 2 %}{% break %}{% endif %}{{ x }}{% endfor %}"),
    ("scoping", "{% set x = 1 %}{% for i in items %}{{ x }}{% set x = x + i %}{{ x }},{% endfor %}{{ x }}"
                "{% set ns = namespace(total=0) %}{% for i in items %}{% set ns.total = ns.total + i %}{% endfor %}"
                "|{{ ns.total }}|{% if true %}{% set y = 5 %}{% endif %}{{ y }}"),
    ("unpacking", "{% for k, v in mapping.items() %}{{ k }}={{ v }};{% endfor %}{% for k, v in mapping | dictsort %}{{ k }}{% endfor %}"
                  "{% for k in mapping %}{{ k }}{% endfor %}{% set a, b = 1, 2 %}{{ a + b }}"),
    ("string-methods", "{{ text.strip() }}|{{ text.lstrip() }}|{{ text.rstrip() }}|{{ 'xxhixx'.strip('x') }}"
                       "|{{ 'a,b,,c'.split(',') }}|{{ ' a  b '.split() }}|{{ 'a b c'.split(' ', 1) }}|{{ 'a,b,c'.rsplit(',', 1) }}"
                       "|{{ 'Hello'.startswith('He') }}{{ 'Hello'.endswith(('x', 'lo')) }}|{{ 'aaa'.replace('a', 'b', 2) }}"
                       "|{{ 'hello world'.title() }}|{{ 'hELLO'.capitalize() }}|{{ 'abc'.upper() }}{{ 'ABC'.lower() }}"
                       "|{{ 'banana'.find('an') }}{{ 'banana'.rfind('an') }}{{ 'banana'.count('a') }}|{{ '-'.join(words) }}"
                       "|{{ 'x{}y{}z{k}'.format(1, 2, k=3) }}|{{ 'a\\nb\\r\\nc'.splitlines() }}"),
    ("filters", "{{ text | trim }}|{{ words | join(', ') }}|{{ words | length }}|{{ words | first }}|{{ words | last }}"
                "|{{ words | sort }}|{{ words | sort(reverse=true) }}|{{ words | sort(case_sensitive=true) }}"
                "|{{ items | sum }}|{{ items | min }}{{ items | max }}|{{ items | reverse | list }}|{{ 'abc' | reverse }}"
                "|{{ people | map(attribute='name') | list }}|{{ people | selectattr('admin') | map(attribute='name') | join }}"
                "|{{ people | rejectattr('age', 'gt', 30) | list }}|{{ items | select('odd') | list }}|{{ items | reject('equalto', 1) | list }}"
                "|{{ people | sort(attribute='age') | map(attribute='name') | join('/') }}|{{ [1, 2, 1, 3] | unique | list }}"
                "|{{ 'hello world' | title }}|{{ 'hello' | capitalize }}|{{ 'x' | upper }}|{{ 3.7 | int }}|{{ '42' | int }}"
                "|{{ 'nope' | int }}|{{ 5 | float }}|{{ -3 | abs }}|{{ 2.567 | round(2) }}|{{ 2.5 | round }}|{{ 'a<b>&\"' | e }}"
                "|{{ 'one\\ntwo\\n\\nthree' | indent(2) }}|{{ 'one\\ntwo' | indent(2, true) }}|{{ 'aXbX' | replace('X', '-') }}"
                "|{{ mapping | items | list | length }}|{{ 42 | string }}|{{ people | map('length') | list }}|{{ words | map('upper') | join }}"),
    ("tests", "{{ 1 is odd }}{{ 2 is even }}{{ 9 is divisibleby 3 }}{{ 'a' is string }}{{ 1 is number }}{{ 1.5 is float }}"
              "{{ true is boolean }}{{ mapping is mapping }}{{ items is iterable }}{{ items is sequence }}{{ 1 is integer }}"
              "{{ nothing is none }}{{ 'x' is in 'xyz' }}{{ 'abc' is lower }}{{ 'ABC' is upper }}{{ 3 is gt 2 }}"
              "{{ missing is undefined }}{{ 1 is eq 1.0 }}{{ 'a' is not defined }}"),
    ("tojson", "{{ mapping | tojson }}|{{ mapping | tojson(indent=2) }}|{{ people | tojson(indent=4) }}"
               "|{{ 'é\"\\\\\\n\\u0001' | tojson }}|{{ [] | tojson(indent=2) }}|{{ {} | tojson }}|{{ ratio | tojson }}"
               "|{{ mapping | tojson(sort_keys=true) }}|{{ 'é' | tojson(ensure_ascii=true) }}|{{ nothing | tojson }}"),
    ("operators", "{{ 1 + 2 * 3 }}|{{ (1 + 2) * 3 }}|{{ 'a' ~ 1 ~ none }}|{{ 'ab' * 3 }}|{{ [1] + [2] }}|{{ 1 < 2 < 3 }}"
                  "|{{ 'b' in 'abc' }}{{ 'z' not in 'abc' }}|{{ 1 in items }}|{{ 'a' in mapping }}|{{ not flag and number }}"
                  "|{{ flag or 'fallback' }}|{{ 'yes' if number > 5 else 'no' }}|{{ 'only' if flag }}|{{ -number }}"
                  "|{{ items[0] }}{{ items[-1] }}{{ items[1:] }}{{ items[::-1] }}{{ 'hello'[1:-1] }}{{ 'hello'[::2] }}"
                  "|{{ mapping['b'] }}{{ mapping.c.nested }}|{{ 1 == 1.0 }}{{ true == 1 }}{{ [1, 2] == [1, 2] }}"
                  "|{{ 'adjacent' 'strings' }}|{{ range(3) | list }}{{ range(1, 7, 2) | list }}"),
    ("macros", "{% macro greet(name, punctuation='!') %}Hi {{ name }}{{ punctuation }}{% endmacro %}"
               "{{ greet('Ann') }}|{{ greet('Bob', '?') }}|{{ greet(name='Cy', punctuation='.') }}"
               "{% set captured %}inside {{ number }}{% endset %}|{{ captured }}|{% filter upper %}shout{% endfilter %}"),
    ("raise", "{% if true %}{{ raise_exception('Bad roles: ' ~ number) }}{% endif %}"),
    ("undefined-arithmetic", "{{ missing + 1 }}"),
    ("undefined-attribute", "{{ missing.attribute }}"),
    ("type-error", "{{ 'a' + 1 }}"),
]


class RaisedByTemplate(Exception):
    """What raise_exception throws, so raised messages can be told apart from other errors."""


def make_environment():
    def raise_exception(message):
        raise RaisedByTemplate(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    environment = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    environment.filters["tojson"] = tojson
    environment.globals["raise_exception"] = raise_exception
    return environment


def tagged(value):
    """JSON with dict order and float-ness made explicit ({"__pairs__": [[key, value], ...]},
    {"__float__": number}), because the Swift side's JSON decoding keeps neither, and tojson
    output depends on both."""
    if isinstance(value, float):
        return {"__float__": value}
    if isinstance(value, dict):
        return {"__pairs__": [[key, tagged(item)] for key, item in value.items()]}
    if isinstance(value, list):
        return [tagged(item) for item in value]
    return value


def render(template, context):
    try:
        return {"expected": template.render(**context)}
    except RaisedByTemplate as error:
        return {"raised": str(error)}
    except jinja2.TemplateError as error:
        return {"error": f"{type(error).__name__}: {error}"}
    except (TypeError, ValueError) as error:
        return {"error": f"{type(error).__name__}: {error}"}


def gguf_template(path):
    import gguf

    reader = gguf.GGUFReader(path)

    def string_field(name):
        field = reader.fields.get(name)
        return None if field is None else bytes(field.parts[field.data[0]]).decode("utf-8")

    def token(name):
        field = reader.fields.get(name)
        if field is None:
            return ""
        tokens = reader.fields["tokenizer.ggml.tokens"]
        index = int(field.parts[field.data[0]][0])
        return bytes(tokens.parts[tokens.data[index]]).decode("utf-8")

    return string_field("tokenizer.chat_template"), token("tokenizer.ggml.bos_token_id"), token("tokenizer.ggml.eos_token_id")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default=DEFAULT_MODELS)
    parser.add_argument("--corpus", default=DEFAULT_CORPUS)
    arguments = parser.parse_args()

    sources = []
    for name, file in MODEL_TEMPLATES:
        source, bos, eos = gguf_template(os.path.join(arguments.models, file))
        sources.append((name, "gguf:" + file, source, bos, eos))
    for name, file, bos, eos in CORPUS_TEMPLATES:
        with open(os.path.join(arguments.corpus, file), encoding="utf-8") as handle:
            sources.append((name, "llama.cpp/models/templates/" + file, handle.read(), bos, eos))

    environment = make_environment()
    templates = []
    for name, origin, source, bos, eos in sources:
        template = environment.from_string(source)
        cases = []
        for conversation, messages, extra in CONVERSATIONS:
            for add_generation_prompt in (False, True):
                context = {"messages": messages, "tools": None, "documents": None,
                           "add_generation_prompt": add_generation_prompt, "bos_token": bos, "eos_token": eos}
                context.update(extra)
                case = {"conversation": conversation, "messages": messages, "add_generation_prompt": add_generation_prompt,
                        "bos_token": bos, "eos_token": eos, "extra_context": tagged(extra)}
                case.update(render(template, context))
                cases.append(case)
        templates.append({"name": name, "origin": origin, "source": source, "cases": cases})

    snippets = []
    for name, source in SNIPPETS:
        result = render(environment.from_string(source), SNIPPET_CONTEXT)
        snippets.append({"name": name, "source": source, **result})

    output = {
        "generator": "make_chat_fixtures.py",
        "jinja2_version": jinja2.__version__,
        "snippet_context": tagged(SNIPPET_CONTEXT),
        "templates": templates,
        "snippets": snippets,
    }
    path = os.path.join(HERE, "chat_templates.json")
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(output, handle, ensure_ascii=False, indent=1)
        handle.write("\n")
    rendered = sum(1 for t in templates for c in t["cases"] if "expected" in c)
    print(f"wrote {path}: {len(templates)} templates, {rendered} rendered cases, {len(snippets)} snippets",
          file=sys.stderr)


if __name__ == "__main__":
    main()
