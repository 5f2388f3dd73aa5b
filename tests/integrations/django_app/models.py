"""Models with a foreign key (a product moves between categories) and a many-to-many."""

from __future__ import annotations

from django.db import models


class Category(models.Model):  # type: ignore[misc]  # Django ships no type information
    name = models.CharField(max_length=50)

    class Meta:
        app_label = "stratacache_test"


class Tag(models.Model):  # type: ignore[misc]  # Django ships no type information
    name = models.CharField(max_length=50)

    class Meta:
        app_label = "stratacache_test"


class Product(models.Model):  # type: ignore[misc]  # Django ships no type information
    name = models.CharField(max_length=50)
    category = models.ForeignKey(Category, on_delete=models.CASCADE, related_name="products")
    tags = models.ManyToManyField(Tag, related_name="products")

    class Meta:
        app_label = "stratacache_test"


class FeaturedProduct(Product):
    """A proxy: signals name it as the sender, the Product rules still apply."""

    class Meta:
        proxy = True
        app_label = "stratacache_test"
