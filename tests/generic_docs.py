"""Documents of other domains than the demo shop (a licence, a recipe, a plain-text README) and the shop's words
that nothing built from them may say."""

import re

from llmops.demo.preset import load_products

SHOP_WORDS = ("¥", "warranty", "return window", "refund", "product", "review", "shopping", "customer",
              "保修", "退货", "商品", "评价", "购物", "售价", "客服", "好评", "差评")


def shop_words(text: str) -> list[str]:
    """The demo shop's words (and product names) that `text` contains."""
    products = {p["name"] for p in load_products()}
    lowered = text.lower()
    return [w for w in (*SHOP_WORDS, *products) if w.lower() in lowered]


LICENCE_MD = """# Open Widget Licence 1.1

## Definitions

"Software" means the source code, documentation and binaries that come with this licence.

A contributor is a person or company that sends changes to the project.

- **Licensor**: the copyright holder who grants this licence.
- **Derived work**: any work that is based on the Software and changes it.

## Permissions

Permission is granted to use, copy, modify and distribute the Software for any purpose. Each copy must keep
the licence text and the copyright notice. Changes to the source files are stated in a notice next to them.

A patent licence is granted by each contributor for the patents that the contribution itself needs. That
patent licence ends for anyone who claims in court that the Software infringes a patent.

## Conditions

1. Keep the copyright notice in every copy.
2. State the changes you made in each modified file.
3. Include a copy of this licence with the binaries.
4. Do not use the names of the authors to endorse derived works.

## Termination

The licence ends 30 days after a breach is reported, unless the breach is fixed. A licensee has 60 days to
bring a claim after the licence ends, and a fixed version must be shipped within 14 days of the report.
"""

RECIPE_MD = """# 番茄炒蛋

番茄炒蛋是一道家常菜，做法简单，营养丰富。它适合搭配米饭一起吃。

## 食材

- 番茄 300 克
- 鸡蛋 3 个
- 白糖 5 克
- 盐 2 克

## 步骤

1. 把鸡蛋打散，加少许盐搅匀。
2. 番茄切成小块备用。
3. 热锅放油，倒入蛋液，炒 2 分钟后盛出。
4. 锅中再加油，放入番茄翻炒 3 分钟出汁。
5. 倒回鸡蛋，加入白糖调味，翻炒均匀即可出锅。

## 小贴士

番茄要选熟透的，这样出汁更多。鸡蛋不要炒太老，嫩一些口感更好。

整道菜大约需要 15 分钟，其中准备 5 分钟。吃不完的可以冷藏保存 1 天。
"""

README_TXT = """Widget Toolkit

The Widget Toolkit is a small library for drawing charts in a terminal. It runs on any system with Python
installed. Charts are redrawn whenever the data changes.

A widget is a rectangle of the screen that draws one chart. Widgets can be nested inside each other. Each
widget keeps its own colours and borders.

A theme is a set of colours and fonts that every widget of a window uses. Themes are loaded from plain text
files. A theme changes how the charts look, not what they show.

The library supports bar charts, line charts, pie charts and tables. Installing it takes about 2 minutes on
a laptop, and a first chart can be drawn in 5 minutes. The package is 12 MB on disk and the documentation
adds 3 MB.

The toolkit is released under a permissive licence. You may use, copy, modify or distribute it for any
purpose. The licence text must be kept with every copy. Support for each release lasts 24 months, and
security fixes are published for 36 months.
"""

_MARKER = re.compile(r"^(?:- |\d+\. )")
_SUM = re.compile(r"^(?P<a>\d+(?:\.\d+)?) (?P<op>[+-]) (?P<b>\d+(?:\.\d+)?) = (?P<c>\d+(?:\.\d+)?) ?(?P<unit>\S+)$")
_CONNECTIVES = {"first", "then", "and", "finally", "先", "然", "后", "最"}


def _tokens(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+|\d+(?:\.\d+)?|[\u4e00-\u9fff]", text.lower()))


def grounded(answer: str, document: str) -> bool:
    """Whether `answer` is read out of `document` (each line verbatim, or every word and number of it found
    there) or computed from it (`a + b = c unit` / `a - b = c unit` with a, b quantities of the document)."""
    source = " ".join(document.replace("**", "").split())
    arithmetic = _SUM.match(answer)
    if arithmetic:
        a, b, c = (float(arithmetic[k]) for k in "abc")
        unit = arithmetic["unit"]
        found = all(re.search(rf"(?<![\d.]){re.escape(arithmetic[k])} ?{re.escape(unit)}", source) for k in "ab")
        return found and abs((a + b if arithmetic["op"] == "+" else a - b) - c) < 1e-9
    lines = [_MARKER.sub("", line) for line in answer.splitlines()]
    return all(line in source or _tokens(line) <= _tokens(source) | _CONNECTIVES for line in lines)
