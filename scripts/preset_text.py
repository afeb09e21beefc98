"""Sentence pools for the demo-shop documents: reviews, FAQ answers, policy wording, chat lines."""

import datetime as dt
from typing import Any

from preset_vocab import Rng

ZH_USE = {
    "electronics": ["通勤路上天天用，", "办公室和家里来回带，", "出差一周都靠它，", "打游戏、上网课都在用，"],
    "home": ["放在卧室用了一个月，", "给爸妈家也买了一台，", "新房装修完就入手了，", "每天早上都要用，"],
    "outdoor": ["上周末去露营用了两晚，", "国庆爬山带着它，", "跟朋友徒步三天，", "下雨天在山里实测过，"],
}
EN_USE = {
    "electronics": ["I use it on my daily commute. ", "It goes between home and office with me. ",
                    "Took it on a week-long business trip. ", "Use it for games and online classes. "],
    "home": ["It has been in my bedroom for a month. ", "Bought a second one for my parents. ",
             "Got it after moving into a new flat. ", "I use it every single morning. "],
    "outdoor": ["Used it on a two-night camping trip. ", "Took it up the mountains over the holiday. ",
                "Did a three-day hike with it. ", "Tested it in pouring rain. "],
}
ZH_POS_OPEN = ["收到货了，", "用了两个星期，", "第二次在这家买了，", "给家里人买的，", "犹豫了很久才下单，", "",
               "活动期间入手，", "朋友推荐的，", "替换旧的那台，", "开箱当天就用上了，"]
ZH_POS_ASPECT = ["{a}很不错", "{a}超出预期", "{a}比之前用的好太多", "{a}让我很满意", "{a}没得挑",
                 "{a}对得起这个价位", "{a}是我最看重的，表现很好", "{a}真的可以"]
ZH_POS_SPEC = ["{s}标称 {t}，实际用下来差不多。", "{s} {t}，日常完全够用。", "{s}是 {t}，和页面写的一致。",
               "页面写{s} {t}，实测没有虚标。"]
ZH_POS_MISC = ["物流很快，第二天就到了。", "包装完好，没有任何磕碰。", "客服回复及时，态度也好。",
               "做工扎实，细节到位。", "说明书写得很清楚，按步骤很快就设置好了。", "颜色和图片一样，很好看。",
               "性价比很高。", "发票随货寄来了，很规范。", "手感很好，质感不像这个价位的东西。", "家里人都说好用。"]
ZH_POS_CLOSE = ["推荐购买！", "会回购。", "五星好评。", "值得入手。", "满意。", "已经推荐给同事了。", "",
                "下次还来这家。"]
ZH_NEG_ASPECT = ["{a}一般，和宣传的有差距", "{a}让人失望", "{a}不太行", "{a}远不如预期", "{a}是最大的短板",
                 "说实话{a}很一般"]
ZH_NEG_SPEC = ["{s}标称 {t}，实际感受差距不小。", "页面写{s} {t}，我觉得有点虚标。",
               "{s}写的是 {t}，用起来完全不是那么回事。"]
ZH_NEG_MISC = ["物流太慢，等了一个星期。", "外包装压坏了。", "客服回复很慢，问题拖了好几天。",
               "有轻微异味，放了几天才散。", "做工粗糙，边缘有毛刺。", "说明书太简单，设置折腾了半天。",
               "收到的颜色和图片不一样。", "价格不便宜，体验配不上。", "用了没几天就出了小毛病。"]
ZH_NEG_CLOSE = ["不推荐。", "已申请退货。", "有点后悔。", "差评。", "希望商家改进。", "不会再买了。", ""]
ZH_MID = ["整体还行，{a}中规中矩。", "{a}一般，胜在价格合适。", "没有惊喜也没有大问题，{a}还可以。",
          "{a}及格，别的方面有好有坏。"]

EN_POS_OPEN = ["Arrived quickly. ", "Been using it for two weeks. ", "Bought this as a gift. ", "",
               "Second purchase here. ", "Replaced my old one with this. ", "Got it in the sale. ",
               "A friend recommended it. "]
EN_POS_ASPECT = ["The {a} is excellent", "Really impressed with the {a}", "The {a} beats my old one easily",
                 "Great {a} for the money", "The {a} is exactly what I hoped for", "Top marks for the {a}"]
EN_POS_SPEC = ["The {s} is listed as {t}, which matches my experience.", "{S}: {t}, just as advertised.",
               "The listed {s} of {t} holds up in real use."]
EN_POS_MISC = ["Packaging was perfect.", "Customer service answered within minutes.", "Feels solid and well made.",
               "Setup took five minutes with the manual.", "Looks even better than the photos.", "Great value.",
               "My partner keeps borrowing it."]
EN_POS_CLOSE = ["Highly recommended!", "Would buy again.", "Five stars.", "Very happy.", "", "No regrets."]
EN_NEG_ASPECT = ["The {a} is disappointing", "The {a} is mediocre at best", "The {a} is much worse than advertised",
                 "I expected better {a}", "Honestly, the {a} is poor"]
EN_NEG_SPEC = ["The listing says {s} {t}; that does not match my experience.", "The {s} ({t} on paper) feels "
               "exaggerated.", "Advertised {s} of {t}? Not in my experience."]
EN_NEG_MISC = ["Delivery took over a week.", "The box arrived crushed.", "Support took days to reply.",
               "There was a chemical smell for days.", "Build quality feels cheap.", "The manual is useless.",
               "A small fault showed up within days."]
EN_NEG_CLOSE = ["Not recommended.", "Returning it.", "Regret buying.", "Would not buy again.", ""]
EN_MID = ["It's okay overall; the {a} is average.", "Average {a}, but the price is fair.",
          "Nothing special, nothing broken.", "The {a} is fine, the rest is hit and miss."]


def _spec_slots(product: dict[str, Any], rng: Rng, lang: str) -> dict[str, str]:
    spec = rng.choice(product["specs"])
    if lang == "zh":
        return {"s": spec["name_zh"], "t": spec["text_zh"]}
    return {"s": spec["name_en"], "S": spec["name_en"][0].upper() + spec["name_en"][1:], "t": spec["text_en"]}


def review_text(product: dict[str, Any], kind: dict[str, Any], rating: int, lang: str, rng: Rng) -> str:
    """One review whose tone follows the rating (4-5 positive, 1-2 negative, 3 mixed)."""
    zh = lang == "zh"
    aspect = rng.choice(kind["aspects"])[0 if zh else 1]
    slots = _spec_slots(product, rng, lang)
    use = rng.choice((ZH_USE if zh else EN_USE)[product["category"]]) if rng.random() < 0.5 else ""
    if rating >= 4:
        first = (use or rng.choice(ZH_POS_OPEN if zh else EN_POS_OPEN)) + rng.choice(
            ZH_POS_ASPECT if zh else EN_POS_ASPECT).format(a=aspect)
        parts = [first + ("，" if zh else "."), rng.choice(ZH_POS_SPEC if zh else EN_POS_SPEC).format(**slots)]
        parts += rng.sample(ZH_POS_MISC if zh else EN_POS_MISC, rng.randint(1, 2))
        parts.append(rng.choice(ZH_POS_CLOSE if zh else EN_POS_CLOSE))
    elif rating <= 2:
        first = use + rng.choice(ZH_NEG_ASPECT if zh else EN_NEG_ASPECT).format(a=aspect)
        parts = [first + ("，" if zh else "."), rng.choice(ZH_NEG_SPEC if zh else EN_NEG_SPEC).format(**slots)]
        parts += rng.sample(ZH_NEG_MISC if zh else EN_NEG_MISC, rng.randint(1, 2))
        parts.append(rng.choice(ZH_NEG_CLOSE if zh else EN_NEG_CLOSE))
    else:
        parts = [use + rng.choice(ZH_MID if zh else EN_MID).format(a=aspect)]
        parts.append(rng.choice(ZH_POS_MISC if zh else EN_POS_MISC))
        parts.append(rng.choice(ZH_NEG_MISC if zh else EN_NEG_MISC))
    return ("" if zh else " ").join(p.strip() for p in parts if p)


def random_date(rng: Rng, year: int = 2024) -> dt.date:
    """A day in `year` on the 1st-28th, so that "the same day N months later" always exists."""
    return dt.date(year, rng.randint(1, 12), rng.randint(1, 28))


def add_months(day: dt.date, months: int) -> dt.date:
    month = day.month - 1 + months
    return dt.date(day.year + month // 12, month % 12 + 1, day.day)


def zh_date(day: dt.date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def en_date(day: dt.date) -> str:
    return f"{day.strftime('%B')} {day.day}, {day.year}"
