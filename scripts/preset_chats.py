"""Customer-support transcripts (Chinese, English and code-switched), each worked out from the policies."""

import datetime as dt
from collections.abc import Callable
from typing import Any

from preset_text import add_months, en_date, random_date, zh_date
from preset_vocab import (
    EXPRESS_FEE,
    FREE_SHIPPING_OVER,
    REFUND_BUSINESS_DAYS,
    REPAIR_LABOUR_FEE,
    RETURN_SHIPPING_FEE,
    SHIPPING_FEE,
    SHOP_EN,
    SHOP_ZH,
    Rng,
)

Chat = Callable[[dict[str, Any], dict[str, Any], Rng], list[str]]
GREET_ZH = ["您好，这里是演示商城客服，很高兴为您服务。", "亲，您好！请问有什么可以帮您？",
            "您好，我是客服小演，请讲。"]
GREET_EN = ["Hi, this is the demo shop support. How can I help?", "Hello! Thanks for contacting the demo shop.",
            "Hi there, support here. What can I do for you?"]
BYE_ZH = ["还有其他问题随时联系我们，祝您生活愉快！", "感谢您的耐心，祝您购物愉快。", "不客气，有问题随时找我们～"]
BYE_EN = ["Anything else, just message us. Have a great day!", "Thanks for your patience. Enjoy your day!",
          "You're welcome. We're here if you need us."]


def _zh_return(p: dict[str, Any], _: dict[str, Any], rng: Rng) -> list[str]:
    day = random_date(rng)
    late = rng.random() < 0.35
    ask = day + dt.timedelta(days=p["return_days"] + rng.randint(2, 9) if late else rng.randint(1, p["return_days"]))
    lines = [f"顾客：我 {zh_date(day)} 签收的 {p['name']}（¥{p['price']}），还没拆封，{zh_date(ask)} 想退掉可以吗？"]
    days = (ask - day).days
    if late:
        lines.append(f"客服：该商品无理由退货期限为 {p['return_days']} 天，您签收已经 {days} 天，超过了期限，"
                     "无法无理由退货；如有质量问题可以申请保修。")
    else:
        lines += [f"客服：可以的，签收至今 {days} 天，在 {p['return_days']} 天期限内。",
                  f"客服：无理由退货需扣除退回运费 ¥{RETURN_SHIPPING_FEE}，"
                  f"退款金额为 ¥{p['price'] - RETURN_SHIPPING_FEE}，"
                  f"仓库验收后 {REFUND_BUSINESS_DAYS} 个工作日内原路退回。"]
    return lines


def _en_defect(p: dict[str, Any], _: dict[str, Any], rng: Rng) -> list[str]:
    day = random_date(rng)
    ask = day + dt.timedelta(days=rng.randint(20, 30 * p["warranty_months"] + 200))
    end = add_months(day, p["warranty_months"])
    lines = [f"Customer: My {p['name']} (¥{p['price']}) stopped working. It was delivered on {en_date(day)} and "
             f"today is {en_date(ask)}. I never dropped it."]
    if ask <= end:
        lines.append(f"Agent: It is covered by its {p['warranty_months']}-month warranty until {en_date(end)}, so the "
                     "repair is free. Please send it in with the order number; repairs take 5-7 business days.")
    else:
        lines.append(f"Agent: Sorry, its {p['warranty_months']}-month warranty ended on {en_date(end)}. We can still "
                     f"repair it for a ¥{REPAIR_LABOUR_FEE} labour fee plus parts.")
    return lines


def _mixed_cart(p: dict[str, Any], q: dict[str, Any], rng: Rng) -> list[str]:
    n = rng.randint(1, 3)
    total = p["price"] * n
    express = rng.random() < 0.4
    fee = (0 if total >= FREE_SHIPPING_OVER else SHIPPING_FEE) + (EXPRESS_FEE if express else 0)
    extra = "，还想选加急 express" if express else ""
    lines = [f"顾客：我想买 {n} 件 {p['name']}（¥{p['price']}）{extra}，运费 shipping fee 多少？",
             f"客服：商品合计 ¥{total}，" + ("满" if total >= FREE_SHIPPING_OVER else "不满")
             + f" ¥{FREE_SHIPPING_OVER}"
             + ("，免标准运费" if total >= FREE_SHIPPING_OVER else f"，标准运费 ¥{SHIPPING_FEE}")
             + (f"，加急另收 ¥{EXPRESS_FEE}" if express else "") + f"。总共需支付 ¥{total + fee}。"]
    if rng.random() < 0.5:
        lines += [f"顾客：OK，那再加一件 {q['name']}（¥{q['price']}）呢？",
                  f"客服：合计 ¥{total + q['price']}，" + (
                      "已满包邮门槛。" if total + q["price"] >= FREE_SHIPPING_OVER else "仍未满包邮门槛。")]
    return lines


def _en_partial(p: dict[str, Any], q: dict[str, Any], rng: Rng) -> list[str]:
    defect = rng.random() < 0.5
    refund = p["price"] if defect else p["price"] - RETURN_SHIPPING_FEE
    why = "it arrived with a cracked case" if defect else "I changed my mind, it's unopened"
    return [f"Customer: I ordered the {p['name']} (¥{p['price']}) and the {q['name']} (¥{q['price']}). I want to "
            f"return only the first one because {why}.",
            "Agent: " + ("Since it is defective we cover the return shipping and refund the full price."
                         if defect else f"For a return without a reason ¥{RETURN_SHIPPING_FEE} return shipping is "
                         "deducted.") + f" Your refund will be ¥{refund}; you keep the other item."]


SCENARIOS: list[tuple[str, Chat]] = [("zh", _zh_return), ("en", _en_defect), ("mixed", _mixed_cart),
                                     ("en", _en_partial)]


def support_chats(products: list[dict[str, Any]], rng: Rng) -> str:
    lines = [f"# {SHOP_ZH}客服对话记录 / Support transcripts of {SHOP_EN}", "",
             "以下对话已脱敏，仅用于培训新客服。These transcripts are anonymised and used to train new agents.", ""]
    for number in range(1, 121):
        lang, scenario = SCENARIOS[number % len(SCENARIOS)]
        p, q = rng.sample(products, 2)
        greet = rng.choice(GREET_EN if lang == "en" else GREET_ZH)
        bye = rng.choice(BYE_EN if lang == "en" else BYE_ZH)
        agent = "Agent" if lang == "en" else "客服"
        lines += [f"## C{number:03d} ({lang})", "", f"{agent}：{greet}" if lang != "en" else f"{agent}: {greet}"]
        lines += scenario(p, q, rng)
        lines += [f"{agent}: {bye}" if lang == "en" else f"{agent}：{bye}", ""]
    return "\n".join(lines)
