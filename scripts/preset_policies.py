"""The demo shop's policies (shipping, returns, refunds, warranty, after-sales) and FAQ, in Chinese and English."""

from typing import Any

from preset_vocab import (
    CATEGORIES,
    EXPRESS_FEE,
    FREE_SHIPPING_OVER,
    REFUND_BUSINESS_DAYS,
    REPAIR_LABOUR_FEE,
    RETURN_SHIPPING_FEE,
    SHIPPING_FEE,
    SHOP_EN,
    SHOP_ZH,
    TYPES,
    Rng,
)

KINDS = {kind["key"]: kind for kind in TYPES}


def policies_zh() -> str:
    windows = "\n".join(f"| {c['zh']} | {c['return_days']} 天 |" for c in CATEGORIES.values())
    return f"""# {SHOP_ZH}服务政策

本文件适用于{SHOP_ZH}销售的全部商品。如与单个商品页面说明不一致，以本文件为准。

## 一、配送政策

1. 订单实付金额满 ¥{FREE_SHIPPING_OVER} 免运费；不满 ¥{FREE_SHIPPING_OVER} 的订单收取标准运费 ¥{SHIPPING_FEE}。
2. 标准快递一般 2-4 天送达，偏远地区（新疆、西藏、青海等）5-7 天送达。
3. 需要更快送达可选择加急配送，另收 ¥{EXPRESS_FEE}，省会城市次日达。加急费不参与免运费计算，也不因满额而免除。
4. 每天 16:00 前付款的订单当天发货，16:00 后付款的订单次日发货。
5. 签收时请当面检查外包装，如有明显破损可拒收，本店会免费补发。

## 二、退货政策

1. 各品类的无理由退货期限如下，从签收次日开始计算：

| 品类 | 无理由退货期限 |
|---|---|
{windows}

2. 无理由退货要求商品未使用、配件齐全、包装完好，退回运费由买家承担，统一按 ¥{RETURN_SHIPPING_FEE} 从退款中扣除。
3. 因质量问题退货，运费由本店承担，全额退款，不扣除任何费用。
4. 超过无理由退货期限但仍在保修期内的质量问题，可享受免费维修或更换，但不能退款。
5. 定制商品、已激活的软件会员和贴身用品不支持无理由退货。

## 三、退款说明

1. 仓库收到退货并验收合格后，{REFUND_BUSINESS_DAYS} 个工作日内原路退款。
2. 部分退货时，按所退商品的单价计算退款；若退货后剩余商品金额低于 ¥{FREE_SHIPPING_OVER}，原订单免掉的运费不再补收。
3. 使用优惠券的订单，优惠金额按商品价格比例分摊，退款时扣除对应的分摊金额。

## 四、保修政策

1. 保修期自签收之日起计算，各商品的保修时长以商品目录和说明书为准（6 至 36 个月不等）。
2. 保修期内非人为损坏的故障，本店免费维修；维修无法解决的，更换同型号新品。
3. 以下情况不在保修范围：摔落、进水、私自拆修、使用非原装配件造成的损坏。
4. 超出保修期或不在保修范围内的维修，收取人工费 ¥{REPAIR_LABOUR_FEE}，另加实际更换的零件费用。
5. 维修周期一般为 5-7 个工作日（不含寄送时间），维修后的部件享受 90 天保修。

## 五、售后服务

1. 在线客服工作时间：每天 9:00-21:00；App 内"我的订单—申请售后"可随时提交。
2. 申请售后时请提供订单号、故障描述和照片或视频，便于快速处理。
3. 发票：默认开具电子普通发票，随订单发送到邮箱；如需增值税专用发票，请在下单后 30 天内联系客服。
4. 会员积分：每消费 ¥1 累积 1 积分，退货时扣回对应积分。
"""


def policies_en() -> str:
    windows = "\n".join(f"  - {c['en'].capitalize()}: {c['return_days']} days" for c in CATEGORIES.values())
    return f"""SERVICE POLICIES OF {SHOP_EN.upper()}

These policies apply to every product sold by {SHOP_EN}. Where a product page says otherwise, this document wins.

1. SHIPPING
  - Orders of ¥{FREE_SHIPPING_OVER} or more ship free. Orders under ¥{FREE_SHIPPING_OVER} pay a standard shipping fee
    of ¥{SHIPPING_FEE}.
  - Standard delivery takes 2-4 days; remote regions (Xinjiang, Tibet, Qinghai) take 5-7 days.
  - Express delivery costs an extra ¥{EXPRESS_FEE} (next day in provincial capitals). The express fee is charged
    on every order, even one that ships free.
  - Orders paid before 16:00 leave the warehouse the same day; later orders leave the next day.
  - Check the parcel when it arrives. You may refuse a visibly damaged parcel and we send a new one free.

2. RETURNS
  - Return window for returns without a reason, counted from the day after delivery:
{windows}
  - Returns without a reason: the item must be unused, complete and in its original packaging. The buyer pays
    the return shipping, a flat ¥{RETURN_SHIPPING_FEE} deducted from the refund.
  - Returns because of a defect: we pay the shipping and refund the full price.
  - After the return window but within the warranty, a defect is repaired or the item replaced, not refunded.
  - Custom-made items, activated software memberships and personal-care items cannot be returned without a
    reason.

3. REFUNDS
  - Refunds go back to the original payment method within {REFUND_BUSINESS_DAYS} business days after the
    warehouse accepts the returned item.
  - For a partial return the refund is the unit price of each returned item. If the rest of the order falls
    under ¥{FREE_SHIPPING_OVER}, we do not charge the shipping fee afterwards.
  - Coupon discounts are shared across items in proportion to price and deducted from the refund accordingly.

4. WARRANTY
  - The warranty starts on the delivery date. Its length is given in the catalogue and in each manual
    (6 to 36 months).
  - Faults that are not caused by the user are repaired free during the warranty; if a repair cannot fix the
    fault, we replace the item with a new one of the same model.
  - Not covered: drops, water damage, unauthorised repair, damage from non-original accessories.
  - Repairs outside the warranty (or not covered by it) cost a ¥{REPAIR_LABOUR_FEE} labour fee plus the parts
    actually replaced.
  - Repairs take 5-7 business days plus shipping; repaired parts carry a 90-day warranty.

5. AFTER-SALES SERVICE
  - Live chat is open 9:00-21:00 every day; after-sales requests can be filed any time under "My orders" in the
    app.
  - Please include the order number, a description of the fault and a photo or video.
  - Invoices: an electronic invoice is e-mailed with every order; for a VAT special invoice contact support
    within 30 days of ordering.
  - Points: every ¥1 spent earns 1 point; points are taken back when an item is returned.
"""


GENERAL_ZH = [
    ("订单多少钱可以包邮？", f"订单实付满 ¥{FREE_SHIPPING_OVER} 即可包邮，不满则收取 ¥{SHIPPING_FEE} 运费。"),
    ("加急配送怎么收费？", f"加急配送另收 ¥{EXPRESS_FEE}，满额包邮也不能免除加急费。"),
    ("什么时候发货？", "16:00 前付款当天发货，之后付款次日发货。"),
    ("无理由退货的运费谁出？", f"由买家承担，统一从退款中扣除 ¥{RETURN_SHIPPING_FEE}。"),
    ("质量问题退货怎么处理？", "运费由本店承担，全额退款。"),
    ("退款多久到账？", f"仓库验收合格后 {REFUND_BUSINESS_DAYS} 个工作日内原路退回。"),
    ("过了保修期还能修吗？", f"可以，收取人工费 ¥{REPAIR_LABOUR_FEE} 加实际零件费用。"),
    ("保修期从哪天开始算？", "从签收之日起计算。"),
    ("可以开专票吗？", "可以，请在下单后 30 天内联系客服申请增值税专用发票。"),
    ("客服几点上班？", "在线客服每天 9:00-21:00 在线，App 内可随时提交售后申请。"),
]
GENERAL_EN = [
    ("When is shipping free?",
     f"Orders of ¥{FREE_SHIPPING_OVER} or more ship free; smaller orders pay ¥{SHIPPING_FEE}."),
    ("How much is express delivery?", f"An extra ¥{EXPRESS_FEE}, charged even when the order ships free."),
    ("Who pays return shipping?", f"For returns without a reason the buyer does: ¥{RETURN_SHIPPING_FEE} comes off "
     "the refund. For defective items we pay."),
    ("How fast are refunds?", f"Within {REFUND_BUSINESS_DAYS} business days after the warehouse accepts the return."),
    ("Can you repair items out of warranty?", f"Yes, for a ¥{REPAIR_LABOUR_FEE} labour fee plus parts."),
    ("When does the warranty start?", "On the delivery date."),
    ("Do you ship to Tibet?", "Yes; remote regions take 5-7 days with standard delivery."),
    ("What are your support hours?", "Live chat runs 9:00-21:00 daily; after-sales requests can be filed any time."),
]


def _product_qa_zh(p: dict[str, Any], rng: Rng) -> list[tuple[str, str]]:
    kind, spec = KINDS[p["type"]], rng.choice(p["specs"])
    value = spec["text_zh"]
    ship = "单件即可包邮" if p["price"] >= FREE_SHIPPING_OVER else f"单件不满 ¥{FREE_SHIPPING_OVER}，需付运费"
    pool = [
        (rng.choice(["{n} 多少钱？", "{n} 现在卖多少？", "{n} 的价格是多少？"]).format(n=p["name"]),
         f"{p['name']} 售价 ¥{p['price']}，{ship}。"),
        (rng.choice(["{n} 保修多久？", "{n} 的保修期有多长？", "买 {n} 保修几个月？"]).format(n=p["name"]),
         f"{p['name']} 提供 {p['warranty_months']} 个月保修，自签收之日起计算。"),
        (rng.choice(["{n} 可以退货吗？", "{n} 不喜欢能退吗？", "{n} 支持无理由退货吗？"]).format(n=p["name"]),
         f"{p['name']} 支持 {p['return_days']} 天无理由退货，需商品未使用、包装完好。"),
        (f"{p['name']} 的{spec['name_zh']}是多少？", f"{p['name']} 的{spec['name_zh']}为 {value}。"),
        (rng.choice(["{n} 怎么开始使用？", "{n} 第一次怎么设置？"]).format(n=p["name"]), kind["setup"][0]),
        (f"{p['name']} {kind['trouble'][0]}怎么办？", kind["trouble"][1]),
    ]
    return rng.sample(pool, 4)


def _product_qa_en(p: dict[str, Any], rng: Rng) -> list[tuple[str, str]]:
    kind, spec = KINDS[p["type"]], rng.choice(p["specs"])
    value = spec["text_en"]
    ship = "ships free on its own" if p["price"] >= FREE_SHIPPING_OVER else "needs a shipping fee on its own"
    pool = [
        (rng.choice(["How much is the {n}?", "What does the {n} cost?", "What's the price of the {n}?"])
         .format(n=p["name"]), f"The {p['name']} costs ¥{p['price']} and {ship}."),
        (rng.choice(["How long is the warranty on the {n}?", "Is the {n} under warranty, and for how long?"])
         .format(n=p["name"]), f"The {p['name']} has a {p['warranty_months']}-month warranty from delivery."),
        (rng.choice(["Can I return the {n}?", "What if I don't like the {n}?"]).format(n=p["name"]),
         f"Yes, the {p['name']} has a {p['return_days']}-day return window if unused and complete."),
        (f"What is the {spec['name_en']} of the {p['name']}?", f"The {p['name']} has a {spec['name_en']} of {value}."),
        (f"How do I set up the {p['name']}?", kind["setup"][1]),
        (f"What if {kind['trouble'][2]} on my {p['name']}?", kind["trouble"][3].capitalize()),
    ]
    return rng.sample(pool, 4)


def faq_zh(products: list[dict[str, Any]], rng: Rng) -> str:
    lines = [f"# {SHOP_ZH}常见问题", "", "## 通用问题", ""]
    for q, a in GENERAL_ZH:
        lines += [f"**问：{q}**", f"答：{a}", ""]
    lines += ["## 商品问题", ""]
    for p in products:
        lines += [f"### {p['full_name_zh']}", ""]
        for q, a in _product_qa_zh(p, rng):
            lines += [f"**问：{q}**", f"答：{a}", ""]
    return "\n".join(lines)


def faq_en(products: list[dict[str, Any]], rng: Rng) -> str:
    lines = [f"# Frequently asked questions at {SHOP_EN}", "", "## General", ""]
    for q, a in GENERAL_EN:
        lines += [f"**Q: {q}**", f"A: {a}", ""]
    lines += ["## Products", ""]
    for p in products:
        lines += [f"### {p['full_name_en']}", ""]
        for q, a in _product_qa_en(p, rng):
            lines += [f"**Q: {q}**", f"A: {a}", ""]
    return "\n".join(lines)
