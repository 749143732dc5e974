output "vpc_id" {
  description = "The VPC's id."
  value       = aws_vpc.this.id
}

output "vpc_cidr_block" {
  description = "The VPC's IPv4 range (security groups of the other modules allow traffic from it)."
  value       = aws_vpc.this.cidr_block
}

output "private_subnet_ids" {
  description = "The three private subnets, in the order of availability_zones."
  value       = aws_subnet.private[*].id
}

output "private_route_table_ids" {
  description = "Route tables of the private subnets."
  value       = aws_route_table.private[*].id
}

output "s3_endpoint_id" {
  description = "The S3 gateway endpoint (the archive module's bucket policy may require it)."
  value       = aws_vpc_endpoint.s3.id
}

output "interface_endpoint_ids" {
  description = "Interface endpoint id per service."
  value       = { for service, endpoint in aws_vpc_endpoint.interface : service => endpoint.id }
}
